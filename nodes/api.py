import logging

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.models import Node
from nodes.services import node_disable, node_drain, node_enable, node_for_token, node_heartbeat
from portal.errors import PortalError

log = logging.getLogger("nodes.heartbeat")


class GpuReport(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=63)
    name = serializers.CharField(max_length=200)
    uuid = serializers.CharField(max_length=100, required=False, allow_blank=True)
    memory_total = serializers.IntegerField(min_value=0)
    memory_used = serializers.IntegerField(min_value=0)
    utilization = serializers.FloatField(
        min_value=0, max_value=100, allow_null=True, required=False
    )
    temperature = serializers.FloatField(
        min_value=-50, max_value=200, allow_null=True, required=False
    )


class HeartbeatInput(serializers.Serializer):
    boot_id = serializers.CharField(max_length=64)
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    gpus = GpuReport(many=True, default=list)
    cpu_percent = serializers.FloatField(
        min_value=0, max_value=100, allow_null=True, required=False
    )
    memory_total = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    memory_used = serializers.IntegerField(min_value=0, allow_null=True, required=False)
    engines = serializers.DictField(child=serializers.DictField(), default=dict)

    def validate_engines(self, engines):
        if len(engines) > 20 or any(len(str(v)) > 4000 for v in engines.values()):
            raise serializers.ValidationError("Too much engine detail.")
        return engines


class NodeSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    running_jobs = serializers.IntegerField(read_only=True)

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "queue",
            "status",
            "enabled",
            "draining",
            "address",
            "hostname",
            "cpu_slots",
            "gpus",
            "cpu_percent",
            "memory_total",
            "memory_used",
            "engines",
            "last_heartbeat_at",
            "running_jobs",
        ]

    def get_status(self, node) -> str:
        return node.status(busy=getattr(node, "running_jobs", 0) > 0)


def nodes_with_load():
    """Nodes with the number of jobs running on each (jobs point here as `jobs`)."""
    return Node.objects.annotate(
        running_jobs=Count("jobs", filter=Q(jobs__state="running"))
    ).order_by("name")


class NodeListView(ListAPIView):
    """The node pool (staff only)."""

    serializer_class = NodeSerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self):
        return nodes_with_load()


class HeartbeatView(APIView):
    """A node's agent reports itself; `Authorization: Node <token>`."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(request=HeartbeatInput, responses=NodeSerializer, summary="Node heartbeat")
    def post(self, request):
        header = get_authorization_header(request).split()
        token = header[1].decode("latin-1") if len(header) == 2 and header[0] == b"Node" else ""
        node = node_for_token(token)
        if node is None:
            log.warning(
                "heartbeat refused: no node has the token sent from %s",
                request.META.get("REMOTE_ADDR"),
            )
            raise PortalError(
                "Unknown node token; send 'Authorization: Node <token>' with the token "
                "`manage.py createnode` printed.",
                code="node_token_invalid",
                status_code=401,
            )
        report = HeartbeatInput(data=request.data)
        report.is_valid(raise_exception=True)
        node = node_heartbeat(
            node=node, report=report.validated_data, address=request.META.get("REMOTE_ADDR")
        )
        return Response(
            {
                "name": node.name,
                "queue": node.queue,
                "cpu_slots": node.cpu_slots,
                "slots": len(node.slots()),
                "enabled": node.enabled,
                "draining": node.draining,
                "heartbeat_interval": settings.PORTAL_HEARTBEAT_INTERVAL,
            }
        )


class NodeActionView(APIView):
    """Enable, disable or drain a node (staff)."""

    permission_classes = [IsAdminUser]
    actions = {"enable": node_enable, "disable": node_disable, "drain": node_drain}

    @extend_schema(
        request=None, responses=NodeSerializer, summary="Enable, disable or drain a node"
    )
    def post(self, request, pk, action):
        node = Node.objects.filter(pk=pk).first()
        if node is None or action not in self.actions:
            raise NotFound("No such node or action.")
        self.actions[action](node=node, by=request.user)
        LogEntry.objects.log_actions(
            user_id=request.user.pk,
            queryset=[node],
            action_flag=CHANGE,
            change_message=f"{action}d the node" if action != "drain" else "drained the node",
            single_object=True,
        )
        return Response(NodeSerializer(nodes_with_load().get(pk=pk)).data)
