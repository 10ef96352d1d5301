from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

import portal


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "not configured"
    import redis

    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    return "ok"


class HealthView(APIView):
    """Whether the portal can reach what it needs. No authentication, no secrets."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                "version": serializers.CharField(),
                "checks": serializers.DictField(child=serializers.CharField()),
            },
        ),
        summary="Health of the portal (no auth)",
    )
    def get(self, request):
        checks = {}
        for name, check in [("database", _check_database), ("redis", _check_redis)]:
            try:
                checks[name] = check()
            except Exception:  # any failure is the answer, not an error of this view
                checks[name] = "failing"
        healthy = all(value != "failing" for value in checks.values())
        return Response(
            {
                "status": "ok" if healthy else "failing",
                "version": portal.__version__,
                "checks": checks,
            },
            status=200 if healthy else 503,
        )


@extend_schema(exclude=True)
class HealthWithoutSlash(HealthView):
    """`/api/v1/health` as probes write it: the same answer (not a redirect), once in the
    schema."""
