import pytest
from django.utils import timezone

from jobs import placement
from jobs.services import job_submit
from nodes.services import node_create


@pytest.fixture
def enqueued(monkeypatch):
    """Tasks placement hands to the broker, recorded instead of sent (no cluster consumes them
    in these in-process tests)."""
    calls = []
    monkeypatch.setattr(placement, "enqueue", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def make_node(settings):
    def make(name="n1", cpu_slots=1, gpus=(), engines=None, runner=False, lanes=1):
        node, _ = node_create(name=name, cpu_slots=cpu_slots)
        node.gpus = list(gpus)
        node.lanes_per_gpu = lanes
        node.engines = engines or {}
        node.last_heartbeat_at = timezone.now()
        node.save()
        if runner:
            settings.PORTAL_NODE_NAME = name
            settings.PORTAL_NODE_BOOT_ID = "boot-1"
        return node

    return make


@pytest.fixture
def submit(project, alice):
    def submit(kind="sleep", params=None, by=None, **extra):
        job, _ = job_submit(
            project=project, by=by or alice, kind=kind, params=params or {}, inputs=[], **extra
        )
        return job

    return submit


def fake_gpu(index=0, memory=80 * 2**30):
    return {
        "index": index,
        "name": "NVIDIA H100 80GB HBM3",
        "memory_total": memory,
        "memory_used": 0,
        "utilization": 0,
        "temperature": 30,
    }
