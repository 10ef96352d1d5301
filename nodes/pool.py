"""The node pool as the pool page and its WebSocket show it."""

from nodes.models import Node
from nodes.selectors import with_running_jobs


def pool_snapshot() -> list[dict]:
    """Every node with its status, engines, GPUs, warm engines, load and running jobs."""
    nodes = with_running_jobs(Node.objects.order_by("name"))
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
            "warm_engines": node.warm_engines,
            # What it can run, and for an engine that is not ready, what fixes it.
            "engines": {
                name: {"ready": bool(info.get("ready")), "fix": info.get("fix") or ""}
                for name, info in (node.engines or {}).items()
                if isinstance(info, dict)
            },
            "last_heartbeat_at": node.last_heartbeat_at.isoformat()
            if node.last_heartbeat_at
            else None,
            "running": [
                {"id": j.pk, "name": j.name, "kind": j.kind, "gpu": j.gpu} for j in node.running
            ],
        }
        for node in nodes
    ]
