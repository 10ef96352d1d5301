"""The node pool as the pool page and its WebSocket show it."""

from nodes.models import Node
from nodes.selectors import with_running_jobs


def pool_snapshot() -> list[dict]:
    """Every node with its status, engines, GPUs, warm engines, load and running jobs."""
    nodes = with_running_jobs(
        Node.objects.order_by("name"),
        fields=("id", "name", "kind", "gpu", "slot", "gpu_memory", "node_id"),
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
            "lanes_per_gpu": node.lanes_per_gpu,
            "lanes": _lanes(node),
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
                {
                    "id": j.pk,
                    "name": j.name,
                    "kind": j.kind,
                    "gpu": j.gpu,
                    "lane": j.slot % max(1, node.lanes_per_gpu) if j.gpu is not None else None,
                }
                for j in node.running
            ],
        }
        for node in nodes
    ]


def _lanes(node: Node) -> dict[str, list[dict]]:
    """Each GPU's lanes (by GPU index, as text: JSON's keys), each with the job running on it
    (its memory estimate) and the engines warm on it (their state and the memory they hold)."""
    running = {job.slot: job for job in node.running}
    engines: dict[int, list[dict]] = {}
    for engine in node.warm_engines or []:
        engines.setdefault(engine["slot"], []).append(
            {k: engine.get(k) for k in ("kind", "state", "memory")}
        )
    lanes: dict[str, list[dict]] = {}
    for slot in node.slots():
        if slot["gpu"] is None:
            continue
        job = running.get(slot["slot"])
        lanes.setdefault(str(slot["gpu"]), []).append(
            {
                "lane": slot["lane"],
                "slot": slot["slot"],
                "job": None
                if job is None
                else {"id": job.pk, "name": job.name, "kind": job.kind, "memory": job.gpu_memory},
                "engines": engines.get(slot["slot"], []),
            }
        )
    return lanes
