from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from nodes.authentication import IsNode, NodeTokenAuthentication
from nodes.models import MAX_LANES, Node
from nodes.selectors import with_running_count
from nodes.services import node_disable, node_drain, node_enable, node_heartbeat

# Bounds of what an agent may report: beyond any real machine, so a report outside them is a
# broken or hostile agent, refused (400, naming the field) before anything is stored.
MAX_GPUS = 64
MAX_GPU_MEMORY = 2**44  # 16 TiB
MAX_HOST_MEMORY = 2**50  # 1 PiB
MAX_ENGINES = 20
MAX_SLOTS = MAX_GPUS * MAX_LANES + 256  # GPUs' lanes and CPU slots


class GpuReport(serializers.Serializer):
    index = serializers.IntegerField(min_value=0, max_value=MAX_GPUS - 1)
    name = serializers.CharField(max_length=200)
    uuid = serializers.CharField(max_length=100, required=False, allow_blank=True)
    memory_total = serializers.IntegerField(min_value=0, max_value=MAX_GPU_MEMORY)
    memory_used = serializers.IntegerField(min_value=0, max_value=MAX_GPU_MEMORY)
    utilization = serializers.FloatField(
        min_value=0, max_value=100, allow_null=True, required=False
    )
    temperature = serializers.FloatField(
        min_value=-50, max_value=200, allow_null=True, required=False
    )

    def validate(self, gpu):
        if gpu["memory_used"] > gpu["memory_total"]:
            raise serializers.ValidationError({"memory_used": "More than the GPU's total."})
        return gpu


class WarmEngineReport(serializers.Serializer):
    engine = serializers.CharField(max_length=200)
    kind = serializers.CharField(max_length=40)
    slot = serializers.IntegerField(min_value=0, max_value=MAX_SLOTS - 1)
    gpu = serializers.IntegerField(min_value=0, max_value=MAX_GPUS - 1, allow_null=True)
    state = serializers.ChoiceField(choices=["loading", "idle", "busy"])
    memory = serializers.IntegerField(min_value=0, max_value=MAX_GPU_MEMORY)


class HeartbeatInput(serializers.Serializer):
    boot_id = serializers.CharField(max_length=64)
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    gpus = GpuReport(many=True, default=list, max_length=MAX_GPUS)
    lanes_per_gpu = serializers.IntegerField(
        min_value=1, max_value=MAX_LANES, default=1, help_text="jobs one GPU may run at once"
    )
    cpu_percent = serializers.FloatField(
        min_value=0, max_value=100, allow_null=True, required=False
    )
    memory_total = serializers.IntegerField(
        min_value=0, max_value=MAX_HOST_MEMORY, allow_null=True, required=False
    )
    memory_used = serializers.IntegerField(
        min_value=0, max_value=MAX_HOST_MEMORY, allow_null=True, required=False
    )
    engines = serializers.DictField(child=serializers.DictField(), default=dict)
    warm_engines = WarmEngineReport(many=True, default=list, max_length=MAX_SLOTS)

    def validate_gpus(self, gpus):
        indexes = [gpu["index"] for gpu in gpus]
        if len(set(indexes)) != len(indexes):
            raise serializers.ValidationError("Two GPUs report the same index.")
        return gpus

    def validate_engines(self, engines):
        if len(engines) > MAX_ENGINES:
            raise serializers.ValidationError(f"At most {MAX_ENGINES} engines.")
        if any(len(name) > 40 or len(str(v)) > 4000 for name, v in engines.items()):
            raise serializers.ValidationError("Too much engine detail.")
        return engines

    def validate(self, report):
        total, used = report.get("memory_total"), report.get("memory_used")
        if total is not None and used is not None and used > total:
            raise serializers.ValidationError({"memory_used": "More than the host's total."})
        return report


class HeartbeatAnswer(serializers.Serializer):
    """What the portal tells a node's agent back."""

    name = serializers.CharField()
    queue = serializers.CharField()
    cpu_slots = serializers.IntegerField()
    slots = serializers.IntegerField()
    enabled = serializers.BooleanField()
    draining = serializers.BooleanField()
    heartbeat_interval = serializers.FloatField()


class NodeSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    running_jobs = serializers.IntegerField(source="running_count", read_only=True)

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
            "lanes_per_gpu",
            "cpu_percent",
            "memory_total",
            "memory_used",
            "engines",
            "warm_engines",
            "last_heartbeat_at",
            "running_jobs",
        ]

    def get_status(self, node) -> str:
        return node.status(busy=getattr(node, "running_count", 0) > 0)


def nodes_with_load():
    return with_running_count(Node.objects.order_by("name"))


class NodeListView(ListAPIView):
    """The node pool (staff only)."""

    serializer_class = NodeSerializer
    permission_classes = [IsAdminUser]

    def get_queryset(self):
        return nodes_with_load()


class HeartbeatView(APIView):
    """A node's agent reports itself; `Authorization: Node <token>`."""

    authentication_classes = [NodeTokenAuthentication]
    permission_classes = [IsNode]

    @extend_schema(request=HeartbeatInput, responses=HeartbeatAnswer, summary="Node heartbeat")
    def post(self, request):
        report = HeartbeatInput(data=request.data)
        report.is_valid(raise_exception=True)
        node = node_heartbeat(
            node=request.auth, report=report.validated_data, address=request.META.get("REMOTE_ADDR")
        )
        answer = {
            "name": node.name,
            "queue": node.queue,
            "cpu_slots": node.cpu_slots,
            "slots": len(node.slots()),
            "enabled": node.enabled,
            "draining": node.draining,
            "heartbeat_interval": settings.PORTAL_HEARTBEAT_INTERVAL,
        }
        return Response(HeartbeatAnswer(answer).data)


class NodeActionView(APIView):
    """Enable, disable or drain a node (staff)."""

    permission_classes = [IsAdminUser]
    actions = {"enable": node_enable, "disable": node_disable, "drain": node_drain}

    @extend_schema(
        request=None,
        responses=NodeSerializer,
        summary="Enable, disable or drain a node",
        parameters=[OpenApiParameter("action", str, OpenApiParameter.PATH, enum=list(actions))],
    )
    def post(self, request, pk, action):
        node = Node.objects.filter(pk=pk).first()
        if node is None or action not in self.actions:
            raise NotFound("No such node or action.")
        self.actions[action](node=node, by=request.user)
        return Response(NodeSerializer(nodes_with_load().get(pk=pk)).data)
