from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.models import ApiToken
from portal.accounts.services import token_create, token_revoke


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "status", "created_at", "expires_at", "last_used_at"]


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(help_text="The key. Shown this once; only its hash is kept.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]


class TokenCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TokenListView(APIView):
    @extend_schema(responses=TokenSerializer(many=True), summary="List my API tokens")
    def get(self, request):
        tokens = request.user.api_tokens.all()
        return Response(TokenSerializer(tokens, many=True).data)

    @extend_schema(
        request=TokenCreateInput, responses={201: TokenCreatedSerializer}, summary="Make a token"
    )
    def post(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = token_create(user=request.user, **data.validated_data)
        token.key = key
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    def _token(self, request, pk):
        token = request.user.api_tokens.filter(pk=pk).first()
        if token is None:
            raise NotFound("No such token.")
        return token

    @extend_schema(responses=TokenSerializer, summary="One of my API tokens")
    def get(self, request, pk):
        return Response(TokenSerializer(self._token(request, pk)).data)

    @extend_schema(responses={204: None}, summary="Revoke a token")
    def delete(self, request, pk):
        token_revoke(token=self._token(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
