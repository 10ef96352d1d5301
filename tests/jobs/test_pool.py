"""The pool for real: the portal, the scheduler and two nodes, each in processes of its own,
with Django-Q2's ORM broker and its Redis broker."""

import os
import time

import pytest

from jobs.lifecycle import events_append
from jobs.models import Job, State
from jobs.services import job_finish
from nodes.models import Node
from nodes.services import node_disable
from tests.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.database]


def job(pk) -> Job:
    return Job.objects.select_related("node").get(pk=pk)


def finished(pk):
    return job(pk).state in (State.SUCCEEDED, State.FAILED, State.CANCELLED)


def test_jobs_spread_over_both_nodes(stack, project, alice):
    stack.add_nodes("node-a", "node-b")
    client = stack.client(alice)
    ids = [client.submit(project, params={"seconds": 2, "n": n})["id"] for n in range(2)]
    wait_until(lambda: all(finished(pk) for pk in ids), 60, what="both jobs to finish")
    jobs = [job(pk) for pk in ids]
    assert [j.state for j in jobs] == [State.SUCCEEDED, State.SUCCEEDED]
    assert {j.node.name for j in jobs} == {"node-a", "node-b"}
    # They ran at the same time, one on each node.
    assert max(j.started_at for j in jobs) < min(j.finished_at for j in jobs)


def test_a_killed_node_loses_no_job_and_its_late_writes_change_nothing(stack, project, alice):
    stack.add_nodes("node-a", "node-b")
    node_disable(node=Node.objects.get(name="node-b"))
    client = stack.client(alice)
    pk = client.submit(project, params={"seconds": 6, "again": 1})["id"]
    wait_until(
        lambda: job(pk).state == State.RUNNING and job(pk).event_seq > 3, 30, what="the job to run"
    )
    first = job(pk)
    assert first.node.name == "node-a" and first.attempt == 1
    from nodes.services import node_enable

    node_enable(node=Node.objects.get(name="node-b"))
    stack.nodes["node-a"].kill()  # kill -9 of the node's agent, cluster and workers

    wait_until(lambda: job(pk).state == State.SUCCEEDED, 60, what="the job to succeed elsewhere")
    done = job(pk)
    assert done.node.name == "node-b"
    assert done.attempt == 2
    reasons = [t.reason for t in done.transitions.all()]
    assert "node node-a went offline" in reasons
    # What the killed run would write if it woke up now is thrown away.
    seq, artifacts = done.event_seq, done.artifacts.count()
    assert not events_append(
        job_id=pk, placement=first.placement, events=[{"type": "log", "line": "late"}]
    )
    assert not job_finish(job_id=pk, placement=first.placement, state=State.FAILED, reason="late")
    after = job(pk)
    assert (after.state, after.event_seq, after.artifacts.count()) == (
        State.SUCCEEDED,
        seq,
        artifacts,
    )


def test_cancel_ends_a_job_that_ignores_sigterm_within_5_seconds(stack, project, alice):
    stack.add_nodes("node-a")
    client = stack.client(alice)
    pk = client.submit(project, params={"seconds": 120, "ignore_term": True})["id"]

    def pid():
        line = job(pk).events.filter(type="log", data__line__startswith="pid=").first()
        return int(line.data["line"][4:]) if line else None

    process = wait_until(pid, 30, what="the job to start")
    asked = time.monotonic()
    assert client.post(f"/api/v1/jobs/{pk}/cancel/").status_code == 200
    wait_until(lambda: job(pk).state == State.CANCELLED, 5, what="the job to be cancelled")
    assert time.monotonic() - asked < 5
    with pytest.raises(ProcessLookupError):
        for _ in range(20):
            os.kill(process, 0)
            time.sleep(0.05)
    # The slot is free again: the next job starts.
    nxt = client.submit(project, params={"seconds": 0})["id"]
    wait_until(lambda: job(nxt).state == State.SUCCEEDED, 30, what="the next job")


def test_a_disabled_node_receives_nothing(stack, project, alice):
    stack.add_nodes("node-a", "node-b")
    node_disable(node=Node.objects.get(name="node-a"))
    client = stack.client(alice)
    ids = [client.submit(project, params={"seconds": 0.5, "n": n})["id"] for n in range(4)]
    wait_until(lambda: all(finished(pk) for pk in ids), 60, what="the jobs to finish")
    assert {job(pk).node.name for pk in ids} == {"node-b"}
    assert all(job(pk).state == State.SUCCEEDED for pk in ids)


def test_priorities_and_fairness_hold_on_a_queue_of_30_jobs(stack, project, alice, bob, erin):
    from portal.projects.models import Membership

    Membership.objects.filter(project=project, user=bob).update(role="editor")
    stack.add_nodes("node-a")  # one slot: jobs start strictly one after another
    blocker = stack.client(erin).submit(project, params={"seconds": 300})["id"]
    wait_until(lambda: job(blocker).state == State.RUNNING, 30, what="the blocker to run")

    submitted = {}
    for n in range(20):
        submitted[stack.client(alice).submit(project, params={"n": f"a{n}"})["id"]] = f"a{n}"
    bobs = stack.client(bob)
    for n in range(8):
        submitted[bobs.submit(project, params={"n": f"b{n}"})["id"]] = f"b{n}"
    for n in range(2):
        submitted[bobs.submit(project, params={"n": f"B{n}"}, priority="high")["id"]] = f"B{n}"
    assert len(submitted) == 30
    assert Job.objects.filter(pk__in=submitted, state=State.QUEUED, node=None).count() == 30

    stack.client(erin).post(f"/api/v1/jobs/{blocker}/cancel/")
    wait_until(lambda: all(finished(pk) for pk in submitted), 180, every=0.5, what="30 jobs")

    order = [submitted[j.pk] for j in Job.objects.filter(pk__in=submitted).order_by("started_at")]
    expected = ["B0", "B1"]  # high priority first
    for n in range(8):  # then alice and bob take turns...
        expected += [f"a{n}", f"b{n}"]
    expected += [f"a{n}" for n in range(8, 20)]  # ...until bob has nothing left waiting
    assert order == expected


def test_restarts_of_the_web_server_the_scheduler_and_a_node_lose_no_job(stack, project, alice):
    stack.add_nodes("node-a")
    client = stack.client(alice)
    ids = [
        client.submit(project, params={"seconds": s, "again": 1, "n": n})["id"]
        for n, s in enumerate([20, 1, 1])
    ]
    first = ids[0]
    wait_until(lambda: job(first).state == State.RUNNING, 30, what="the first job to run")

    stack.server.restart()
    stack.scheduler.kill()
    stack.scheduler.start()
    node = stack.nodes["node-a"]
    node.stop()  # SIGTERM: the node stops its cluster and the job it was running, promptly
    node.start()

    wait_until(lambda: all(finished(pk) for pk in ids), 90, every=0.5, what="all jobs")
    assert [job(pk).state for pk in ids] == [State.SUCCEEDED] * 3
    assert job(first).attempt == 2
    # Requeued because the node came back with a new boot id, or because its heartbeats
    # stopped for longer than the (shortened) offline limit while the web server restarted.
    requeued = job(first).transitions.filter(from_state="running", to_state="queued").get()
    assert requeued.reason in ("node node-a restarted", "node node-a went offline")
