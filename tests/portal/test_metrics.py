"""Prometheus scrapes `/metrics`: jobs by state, waits and runs, nodes and their GPUs, the MSA
cache, from the database; from allowed addresses or with the bearer token only.

The GPUs are made up (set on the node as its heartbeat would, or PORTAL_FAKE_GPUS for a live
node): none exists here.
"""

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Job, Priority, State
from msa.models import CacheCounter, MsaEntry
from nodes.services import node_create
from tests.conftest import wait_until

GIB = 2**30


def series(text: str) -> dict:
    """{(sample name, frozenset of labels): value} of an exposition text."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels):
    return samples.get((name, frozenset(labels.items())))


def scrape(client, **extra):
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return series(response.content.decode())


def gpu(index, used, utilization, temperature):
    return {
        "index": index,
        "name": "NVIDIA H100 80GB HBM3",
        "uuid": f"GPU-{index}",
        "memory_total": 80 * GIB,
        "memory_used": used,
        "utilization": utilization,
        "temperature": temperature,
    }


def make_node(name, *, gpus=(), warm_engines=(), online=True, **fields):
    node, _ = node_create(name=name, cpu_slots=1)
    node.gpus = list(gpus)
    node.warm_engines = list(warm_engines)
    node.last_heartbeat_at = timezone.now() - timedelta(hours=0 if online else 1)
    for key, field_value in fields.items():
        setattr(node, key, field_value)
    node.save()
    return node


@pytest.fixture
def make_job(project, alice):
    def make(kind, state, *, waited=None, ran=None, node=None, slot=None, **fields):
        """A job in `state` that waited `waited` seconds in the queue and ran `ran`."""
        now = timezone.now()
        times = {}
        if waited is not None:
            started = now - timedelta(seconds=ran or 0)
            times = {"queued_at": started - timedelta(seconds=waited), "started_at": started}
            if ran is not None:
                times["finished_at"] = now
        return Job.objects.create(
            project=project,
            owner=alice,
            kind=kind,
            state=state,
            node=node,
            slot=slot,
            **times,
            **fields,
        )

    return make


def test_it_reports_jobs_nodes_gpus_and_the_msa_cache(client, make_job):
    gpu1 = make_node(
        "gpu1",
        gpus=[gpu(0, 30 * GIB, 87, 64), gpu(1, 2 * GIB, 3, 41)],
        warm_engines=[{"engine": "e", "kind": "predict", "slot": 0, "gpu": 0, "state": "idle"}],
    )
    make_node("cpu1")
    make_node("gone", gpus=[gpu(0, GIB, 50, 50)], online=False)
    make_node("off", enabled=False)
    make_node("drained", draining=True)

    make_job("sleep", State.QUEUED)
    make_job("sleep", State.QUEUED, priority=Priority.HIGH)
    make_job(
        "sleep",
        State.RUNNING,
        waited=2,
        node=gpu1,
        slot=0,
        last_output_at=timezone.now() - timedelta(seconds=40),
    )
    make_job("predict", State.RUNNING, waited=10, node=gpu1, slot=1)
    make_job("predict", State.SUCCEEDED, waited=3, ran=20)
    make_job("predict", State.SUCCEEDED, waited=200, ran=400)
    make_job("predict", State.FAILED, waited=0.5, ran=5)
    MsaEntry.objects.create(
        key="a" * 64,
        source="local",
        sequences=["MKV"],
        storage_key="msa/a",
        size=1000,
        last_used_at=timezone.now(),
    )
    MsaEntry.objects.create(
        key="b" * 64,
        source="server",
        sequences=["MKT"],
        storage_key="msa/b",
        size=500,
        last_used_at=timezone.now(),
    )
    CacheCounter.objects.create(pk=1, hits=3, misses=1)

    s = scrape(client)

    jobs = "portal_jobs"
    assert value(s, jobs, state="queued", kind="sleep", priority="normal") == 1
    assert value(s, jobs, state="queued", kind="sleep", priority="high") == 1
    assert value(s, jobs, state="running", kind="sleep", priority="normal") == 1
    assert value(s, jobs, state="running", kind="predict", priority="normal") == 1
    assert value(s, jobs, state="succeeded", kind="predict", priority="normal") == 2
    assert value(s, jobs, state="failed", kind="predict", priority="normal") == 1
    assert value(s, jobs, state="running", kind="train", priority="normal") == 0

    # Queue waits of the started jobs: predict 10, 3, 200, 0.5 s; runs of the finished ones.
    wait = "portal_job_queue_wait_seconds"
    assert value(s, f"{wait}_bucket", kind="predict", le="1.0") == 1
    assert value(s, f"{wait}_bucket", kind="predict", le="5.0") == 2
    assert value(s, f"{wait}_bucket", kind="predict", le="15.0") == 3
    assert value(s, f"{wait}_bucket", kind="predict", le="300.0") == 4
    assert value(s, f"{wait}_bucket", kind="predict", le="+Inf") == 4
    assert value(s, f"{wait}_count", kind="predict") == 4
    assert value(s, f"{wait}_sum", kind="predict") == pytest.approx(213.5)
    assert value(s, f"{wait}_count", kind="sleep") == 1
    run = "portal_job_run_seconds"
    assert value(s, f"{run}_bucket", kind="predict", le="10.0") == 1
    assert value(s, f"{run}_bucket", kind="predict", le="30.0") == 2
    assert value(s, f"{run}_bucket", kind="predict", le="300.0") == 2
    assert value(s, f"{run}_bucket", kind="predict", le="600.0") == 3
    assert value(s, f"{run}_sum", kind="predict") == pytest.approx(425)
    assert value(s, f"{run}_count", kind="sleep") is None  # no sleep job finished

    assert value(s, "portal_jobs_running", node="gpu1") == 2
    assert value(s, "portal_jobs_running", node="cpu1") == 0
    # The quietest running job is the sleep job, silent for 40 s.
    assert 40 <= value(s, "portal_running_jobs_silent_seconds") < 60

    h100 = {"node": "gpu1", "model": "NVIDIA H100 80GB HBM3"}
    assert value(s, "portal_gpu_utilization_percent", gpu="0", **h100) == 87
    assert value(s, "portal_gpu_utilization_percent", gpu="1", **h100) == 3
    assert value(s, "portal_gpu_memory_used_bytes", gpu="0", **h100) == 30 * GIB
    assert value(s, "portal_gpu_memory_total_bytes", gpu="1", **h100) == 80 * GIB
    assert value(s, "portal_gpu_temperature_celsius", gpu="0", **h100) == 64
    # An offline node's last report is stale: its GPU is not shown.
    assert (
        value(s, "portal_gpu_utilization_percent", gpu="0", node="gone", model=h100["model"])
        is None
    )
    assert value(s, "portal_warm_engines", node="gpu1") == 1
    assert value(s, "portal_warm_engines", node="cpu1") == 0

    assert value(s, "portal_nodes", status="busy") == 1
    assert value(s, "portal_nodes", status="idle") == 1
    assert value(s, "portal_nodes", status="offline") == 1
    assert value(s, "portal_nodes", status="disabled") == 1
    assert value(s, "portal_nodes", status="draining") == 1

    assert value(s, "portal_msa_cache_entries") == 2
    assert value(s, "portal_msa_cache_bytes") == 1500
    assert value(s, "portal_msa_cache_hit_ratio") == 0.75
    assert value(s, "portal_msa_cache_hits_total") == 3


def test_it_counts_responses_by_status(client, db):
    before = value(scrape(client), "portal_http_requests_total", status="404") or 0
    client.get("/no-such-page/")
    client.get("/no-such-page/")

    assert value(scrape(client), "portal_http_requests_total", status="404") == before + 2


def test_other_addresses_are_refused(client, db):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")

    assert response.status_code == 403
    assert b"portal_jobs" not in response.content


def test_an_allowed_network_may_scrape(client, db, settings):
    settings.PORTAL_METRICS_ALLOWED = ["10.1.0.0/16"]

    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_the_bearer_token_lets_another_address_scrape(client, db, settings):
    settings.PORTAL_METRICS_TOKEN = "s3cret-scrape-token"

    allowed = client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
    )
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret")

    assert allowed.status_code == 200
    assert b"portal_jobs" in allowed.content
    assert wrong.status_code == 403


def test_no_token_is_accepted_when_none_is_set(client, db, settings):
    settings.PORTAL_METRICS_TOKEN = ""

    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 403


def test_a_forwarded_loopback_address_is_not_believed_behind_a_proxy(client, db, settings):
    # nginx appends the address it saw; the client wrote the first entry itself.
    settings.NUM_PROXIES = 1

    forged = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.9"
    )

    assert forged.status_code == 403


@pytest.mark.slow
def test_a_live_portal_reports_the_running_job_its_node_and_gpu(orm_stack, project, alice):
    orm_stack.add_nodes(
        "gpu1",
        cpu_slots=0,
        PORTAL_FAKE_GPUS=json.dumps([{"name": "made-up 80 GB", "memory_total": 80 * GIB}]),
    )
    client = orm_stack.client(alice)
    job = client.submit(project, params={"seconds": 30, "gib": 1})["id"]
    wait_until(lambda: Job.objects.get(pk=job).state == State.RUNNING, 30, what="the job to run")
    # A live client follows it: its pushes are the event lag's observations.
    from websockets.sync.client import connect

    seen = Job.objects.get(pk=job).event_seq  # the history is not lag: only what comes next
    stream = orm_stack.url.replace("http://", "ws://") + f"/ws/jobs/{job}/?after={seen}"
    with connect(stream, additional_headers=dict(client.session.headers)) as socket:
        # Its next lines: the first may come with the catch-up on connecting, the next is
        # pushed as it comes.
        assert [json.loads(socket.recv(timeout=20))["id"] > seen for _ in range(2)] == [True] * 2

    response = requests.get(orm_stack.url + "/metrics", timeout=30)

    assert response.status_code == 200
    s = series(response.text)
    assert value(s, "portal_jobs", state="running", kind="sleep", priority="normal") == 1
    assert value(s, "portal_jobs_running", node="gpu1") == 1
    assert value(s, "portal_nodes", status="busy") == 1
    assert (
        value(s, "portal_gpu_memory_total_bytes", node="gpu1", gpu="0", model="made-up 80 GB")
        == 80 * GIB
    )
    assert value(s, "portal_job_queue_wait_seconds_count", kind="sleep") == 1
    assert value(s, "portal_event_push_seconds_count") >= 1
