"""Placement decisions and the sweep, in this process (the broker replaced by a list)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.kinds import get_kind
from jobs.models import Job, State
from jobs.placement import place_queued_jobs
from jobs.runner import run_job
from jobs.scheduler import sweep
from jobs.services import job_start
from nodes.models import Node
from tests.jobs.conftest import fake_gpu

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database]


def test_a_job_goes_to_a_gpu_when_the_kind_can_use_one(make_node, submit, enqueued):
    make_node("cpu-only", cpu_slots=2)
    make_node("gpu-box", cpu_slots=1, gpus=[fake_gpu(0), fake_gpu(1)])
    job = submit()
    job.refresh_from_db()
    assert (job.node.name, job.gpu) == ("gpu-box", 0)
    assert enqueued == [(job.pk, 1, "node-gpu-box")]


def test_jobs_spread_over_nodes_and_fill_every_slot_once(make_node, submit, enqueued):
    make_node("a", cpu_slots=2)
    make_node("b", cpu_slots=2)
    jobs = [submit(params={"n": n}) for n in range(5)]
    placed = [(j.node.name, j.slot) for j in Job.objects.filter(node__isnull=False)]
    assert sorted(placed) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert Job.objects.get(pk=jobs[-1].pk).node is None


def test_a_kind_needing_an_engine_waits_for_a_node_that_has_it(
    make_node, submit, enqueued, monkeypatch
):
    kind = get_kind("sleep")
    monkeypatch.setattr(kind, "requires", ("boltz",))
    make_node("plain")
    job = submit()
    assert Job.objects.get(pk=job.pk).node is None
    make_node("boltzy", engines={"boltz": {"ready": True}})
    place_queued_jobs()
    assert Job.objects.get(pk=job.pk).node.name == "boltzy"


def test_a_big_job_goes_only_to_a_gpu_large_enough(make_node, submit, enqueued, monkeypatch):
    kind = get_kind("sleep")
    monkeypatch.setattr(kind, "gpu_memory", lambda params, inputs: 40 * 2**30)
    make_node("small", cpu_slots=0, gpus=[fake_gpu(memory=24 * 2**30)])
    make_node("large", cpu_slots=0, gpus=[fake_gpu(memory=80 * 2**30)])
    job = submit()
    assert Job.objects.get(pk=job.pk).node.name == "large"


def test_disabled_draining_and_offline_nodes_get_nothing(make_node, submit, enqueued):
    for name, change in [("off", {"enabled": False}), ("drain", {"draining": True})]:
        node = make_node(name)
        Node.objects.filter(pk=node.pk).update(**change)
    stale = make_node("stale")
    Node.objects.filter(pk=stale.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    job = submit()
    assert Job.objects.get(pk=job.pk).node is None and enqueued == []


def test_a_node_coming_online_takes_waiting_work_at_once(submit, enqueued, db):
    from nodes.services import node_create
    from tests.nodes.test_heartbeat import beat

    job = submit()
    _, token = node_create(name="late")
    assert beat(token).status_code == 200
    assert Job.objects.get(pk=job.pk).node.name == "late"


def test_what_a_broker_lost_is_placed_again_and_the_lost_task_does_nothing(
    make_node, submit, enqueued, settings
):
    make_node("a", runner=True)
    job = submit(params={"seconds": 0})
    lost = enqueued[-1]
    Job.objects.filter(pk=job.pk).update(placed_at=timezone.now() - timedelta(minutes=5))
    sweep()
    again = enqueued[-1]
    assert again[0] == job.pk and again[1] == lost[1] + 1
    assert "nothing to do" in run_job(job.pk, lost[1])
    assert "done" in run_job(job.pk, again[1])
    assert Job.objects.get(pk=job.pk).state == State.SUCCEEDED


def _running(make_node, submit, name="a"):
    node = make_node(name)
    job = submit()
    job.refresh_from_db()
    job_start(job_id=job.pk, placement=job.placement, node_name=node.name, boot_id="boot-1")
    Node.objects.filter(pk=node.pk).update(boot_id="boot-1")
    return node, Job.objects.get(pk=job.pk)


def test_a_running_job_of_an_offline_node_is_requeued_with_its_attempt_raised(
    make_node, submit, enqueued
):
    node, job = _running(make_node, submit)
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    sweep()
    job.refresh_from_db()
    assert job.state == State.QUEUED and job.node is None and job.attempt == 1
    assert job.transitions.last().reason == "node a went offline"


def test_after_its_last_attempt_a_lost_job_fails(make_node, submit, enqueued, settings):
    node, job = _running(make_node, submit)
    Job.objects.filter(pk=job.pk).update(attempt=settings.PORTAL_JOB_MAX_ATTEMPTS)
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    sweep()
    job.refresh_from_db()
    assert job.state == State.FAILED
    assert "gave up after 3 attempts" in job.transitions.last().reason


def test_a_node_that_restarted_gets_its_lost_runs_requeued(make_node, submit, enqueued):
    node, job = _running(make_node, submit)
    Node.objects.filter(pk=node.pk).update(boot_id="boot-2")
    sweep()
    job.refresh_from_db()
    assert job.transitions.filter(reason="node a restarted").exists()
    # Back in the queue, and placed again on the same node, which is still online.
    assert job.state == State.QUEUED and job.node.name == "a"


def test_a_lost_job_that_was_being_cancelled_ends_cancelled(make_node, submit, enqueued, alice):
    from jobs.services import job_cancel

    node, job = _running(make_node, submit)
    job_cancel(job=job, by=alice)
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() - timedelta(minutes=5))
    sweep()
    job.refresh_from_db()
    assert job.state == State.CANCELLED


def test_fair_order_alternates_users_and_puts_priority_first(alice, bob, project):
    from collections import Counter

    from jobs.placement import fair_order

    now = timezone.now()
    jobs = []
    for n, (owner, priority) in enumerate([(alice, 1)] * 4 + [(bob, 1)] * 2 + [(bob, 2)]):
        jobs.append(
            Job(pk=n + 1, owner=owner, priority=priority, queued_at=now + timedelta(seconds=n))
        )
    order = fair_order(jobs, Counter(), {})
    assert [(j.owner.username, j.priority) for j in order] == [
        ("bob", 2),
        ("alice", 1),
        ("bob", 1),
        ("alice", 1),
        ("bob", 1),
        ("alice", 1),
        ("alice", 1),
    ]
    # A user already running two jobs waits behind another user's first.
    order = fair_order(jobs[:5], Counter({alice.pk: 2}), {})
    assert order[0].owner == bob


def test_a_draining_node_finishes_what_it_runs_and_takes_nothing_new(make_node, submit, enqueued):
    from nodes.services import node_drain

    node, running = _running(make_node, submit)
    node_drain(node=node)
    waiting = submit(params={"n": 2})
    sweep()
    running.refresh_from_db()
    waiting.refresh_from_db()
    assert running.state == State.RUNNING and running.node == node
    assert waiting.node is None
