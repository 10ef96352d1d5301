"""The MSA cache's operations for staff: /api/v1/msa/cache/stats/, cleanup/, clear/."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from msa.selectors import cache_stats
from msa.services import cache_cleanup, cache_clear

MAX_DAYS = 100 * 365
MAX_BUDGET = 2**62


class SourceStatsSerializer(serializers.Serializer):
    entries = serializers.IntegerField()
    bytes = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    entries = serializers.IntegerField()
    bytes = serializers.IntegerField()
    oldest = serializers.DateTimeField(allow_null=True)
    newest = serializers.DateTimeField(allow_null=True)
    hits = serializers.IntegerField()
    misses = serializers.IntegerField()
    hit_rate = serializers.FloatField(allow_null=True)
    by_source = serializers.DictField(child=SourceStatsSerializer())


class CleanupSerializer(serializers.Serializer):
    max_age_days = serializers.IntegerField(
        min_value=0,
        max_value=MAX_DAYS,
        required=False,
        help_text="Remove entries not used for this many days (PORTAL_MSA_CACHE_MAX_AGE_DAYS).",
    )
    budget = serializers.IntegerField(
        min_value=0,
        max_value=MAX_BUDGET,
        required=False,
        help_text="Then the least recently used until the rest fit in this many bytes "
        "(PORTAL_MSA_CACHE_BUDGET).",
    )


class RemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField()
    freed = serializers.IntegerField(help_text="bytes")
    stats = StatsSerializer()


class CacheStatsView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=StatsSerializer, summary="The MSA cache's figures (staff)")
    def get(self, request):
        return Response(StatsSerializer(cache_stats()).data)


class CacheCleanupView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=CleanupSerializer,
        responses=RemovedSerializer,
        summary="Clean up the MSA cache by age, then by size (staff)",
    )
    def post(self, request):
        limits = CleanupSerializer(data=request.data)
        limits.is_valid(raise_exception=True)
        result = cache_cleanup(**limits.validated_data)
        return Response(RemovedSerializer({**result, "stats": cache_stats()}).data)


class CacheClearView(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses=RemovedSerializer, summary="Empty the MSA cache (staff)")
    def post(self, request):
        result = cache_clear()
        return Response(RemovedSerializer({**result, "stats": cache_stats()}).data)
