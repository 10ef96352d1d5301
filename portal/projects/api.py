from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.idempotency import idempotent
from portal.ids import IdField
from portal.projects.filters import MembershipFilter
from portal.projects.models import Membership, Project, Role
from portal.projects.selectors import membership_for, project_for, projects_visible_to
from portal.projects.services import (
    member_add,
    member_remove,
    member_set_role,
    project_create,
    project_delete,
    project_update,
)


class ProjectSerializer(serializers.ModelSerializer):
    my_role = serializers.CharField(read_only=True)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at", "my_role"]


class ProjectInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ProjectListView(ListAPIView):
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return projects_visible_to(self.request.user)

    @extend_schema(request=ProjectInput, responses={201: ProjectSerializer}, summary="New project")
    @idempotent
    def post(self, request):
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_create(by=request.user, **data.validated_data)
        project.my_role = Role.OWNER
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    def _project(self, request, pk, role=Role.VIEWER):
        project_for(request.user, pk, role=role)  # 404 outside, 403 for too low a role
        return projects_visible_to(request.user).get(pk=pk)

    @extend_schema(responses=ProjectSerializer)
    def get(self, request, pk):
        return Response(ProjectSerializer(self._project(request, pk)).data)

    @extend_schema(request=ProjectUpdateInput, responses=ProjectSerializer)
    def patch(self, request, pk):
        project = self._project(request, pk, role=Role.EDITOR)
        data = ProjectUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        project_update(project=project, **data.validated_data)
        return Response(ProjectSerializer(project).data)

    @extend_schema(responses={204: None}, summary="Delete a project and all it holds (owner)")
    def delete(self, request, pk):
        project_delete(project=self._project(request, pk, role=Role.OWNER))
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "project", "username", "role", "created_at"]


class MembershipInput(serializers.Serializer):
    project = IdField()
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipRoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MembershipListView(ListAPIView):
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter

    def get_queryset(self):
        # Members of any project the user belongs to may see who else belongs to it.
        return Membership.objects.filter(
            project__in=projects_visible_to(self.request.user)
        ).select_related("user")

    @extend_schema(
        request=MembershipInput, responses={201: MembershipSerializer}, summary="Add a member"
    )
    @idempotent
    def post(self, request):
        data = MembershipInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_for(request.user, data.validated_data["project"], role=Role.OWNER)
        membership = member_add(
            project=project,
            username=data.validated_data["username"],
            role=data.validated_data["role"],
        )
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MembershipDetailView(APIView):
    def _membership(self, request, pk):
        membership = (
            Membership.objects.filter(project__in=projects_visible_to(request.user), pk=pk)
            .select_related("user")
            .first()
        )
        if membership is None:
            raise NotFound("No such membership.")
        return membership

    @extend_schema(responses=MembershipSerializer)
    def get(self, request, pk):
        return Response(MembershipSerializer(self._membership(request, pk)).data)

    @extend_schema(request=MembershipRoleInput, responses=MembershipSerializer)
    def patch(self, request, pk):
        membership = self._membership(request, pk)
        membership_for(request.user, membership.project_id, role=Role.OWNER)
        data = MembershipRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        member_set_role(membership=membership, role=data.validated_data["role"])
        return Response(MembershipSerializer(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member (owner), or leave")
    def delete(self, request, pk):
        membership = self._membership(request, pk)
        if membership.user_id != request.user.pk:
            membership_for(request.user, membership.project_id, role=Role.OWNER)
        member_remove(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)
