"""The node pool as the pool page and its WebSocket show it."""

from django.db.models import Prefetch

from nodes.models import Node


def pool_snapshot() -> list[dict]:
    """Every node with its status, GPUs, load and running jobs (jobs point here as `jobs`)."""
    from django.apps import apps

    Job = apps.get_model("jobs", "Job")
    running = Job.objects.filter(state="running").only("id", "name", "kind", "gpu", "node_id")
    nodes = Node.objects.order_by("name").prefetch_related(
        Prefetch("jobs", queryset=running, to_attr="running")
    )
    return [
        {
            "id": node.pk,
            "name": node.name,
            "address": node.address or "",
            "hostname": node.hostname,
            "status": node.status(busy=bool(node.running)),
            "enabled": node.enabled,
            "draining": node.draining,
            "cpu_slots": node.cpu_slots,
            "cpu_percent": node.cpu_percent,
            "memory_total": node.memory_total,
            "memory_used": node.memory_used,
            "gpus": node.gpus,
            "last_heartbeat_at": node.last_heartbeat_at.isoformat()
            if node.last_heartbeat_at
            else None,
            "running": [
                {"id": j.pk, "name": j.name, "kind": j.kind, "gpu": j.gpu} for j in node.running
            ],
        }
        for node in nodes
    ]
