"""The runner on its own: it runs a placed job in this process, as a node's worker would."""

import json
import os
import signal
import threading
import time

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections
from django.utils import timezone

from jobs import processes, runner
from jobs.lifecycle import events_append
from jobs.models import Job, State
from jobs.placement import place_queued_jobs
from jobs.runner import run_job
from jobs.services import job_cancel, job_requeue, job_submit
from nodes.models import Node

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database]


def in_thread(*args) -> threading.Thread:
    """run_job in a thread of its own, as a worker would, closing its connection after."""

    def target():
        try:
            run_job(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def beat() -> None:
    """The heartbeat of this process's node, as its running node would send one: a test that
    runs jobs here for longer than PORTAL_NODE_OFFLINE_AFTER would otherwise see its node go
    offline, and an offline node is given no job."""
    Node.objects.filter(name=settings.PORTAL_NODE_NAME).update(last_heartbeat_at=timezone.now())


def placed(job, enqueued):
    """The task placement enqueued for this job (submission already tried to place it)."""
    beat()
    place_queued_jobs()
    job_id, placement, _ = next(call for call in reversed(enqueued) if call[0] == job.pk)
    return job_id, placement


def place_and_run(job, enqueued):
    job_id, placement = placed(job, enqueued)
    result = run_job(job_id, placement)
    job.refresh_from_db()
    return result, placement


def lines(job):
    return [e.data["line"] for e in job.events.filter(type="log").order_by("seq")]


def test_a_job_runs_and_leaves_its_events_and_artifacts(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"seconds": 1.2})
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED
    assert job.attempt == 1
    assert "done" in lines(job)
    assert job.metrics["ticks"]["step"] >= 1
    assert [e.data["state"] for e in job.events.filter(type="state")] == [
        "queued",
        "running",
        "succeeded",
    ]
    seqs = list(job.events.values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    artifact = job.artifacts.get()
    assert artifact.name == "result.txt"
    assert default_storage.open(artifact.storage_key).read() == b"slept 1.2\n"


def test_the_job_runs_with_no_gpu_and_without_the_portals_secrets(
    make_node, submit, enqueued, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/portal")
    make_node(runner=True)
    job = submit(kind="check")
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED
    check = job.artifacts.get(name="check.json")
    assert b'"gpus": []' in default_storage.open(check.storage_key).read()
    env = processes.job_environment(None, {})
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "DATABASE_URL" not in env
    assert processes.job_environment(1, {})["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_job_uses_its_slots_share_of_the_cores(
    make_node, submit, enqueued, settings, monkeypatch
):
    """runnode shares the host's cores out among its slots (PORTAL_THREADS_PER_SLOT); torch
    would otherwise take every core (2 here) in each of the jobs running side by side."""

    def threads() -> int:
        job = submit(kind="check")
        place_and_run(job, enqueued)
        assert job.state == State.SUCCEEDED, job.error
        check = job.artifacts.get(name="check.json")
        return json.loads(default_storage.open(check.storage_key).read())["torch"]["threads"]

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    make_node(runner=True)
    settings.PORTAL_THREADS_PER_SLOT = 1
    assert threads() == 1
    # A limit the node's own environment sets stays.
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads() == 2


def test_inputs_are_fetched_into_the_scratch_directory(make_node, project, alice, api, enqueued):
    make_node(runner=True)
    upload = (
        api(alice)
        .post(
            "/api/v1/uploads/",
            {"project": project.pk, "file": SimpleUploadedFile("s.fasta", b">a\nMKV\n")},
            format="multipart",
        )
        .json()
    )

    job, _ = job_submit(
        project=project,
        by=alice,
        kind="sleep",
        params={},
        inputs=[upload["id"]],
    )
    place_and_run(job, enqueued)
    assert "input s.fasta: 7 bytes" in lines(job)


def test_a_failing_job_fails_with_its_last_lines(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"exit": 3, "lines": 2})
    place_and_run(job, enqueued)
    assert job.state == State.FAILED
    assert job.transitions.last().reason == "exited with code 3"
    assert "done" in job.error


def test_a_flood_of_output_is_written_in_batches(make_node, submit, enqueued, monkeypatch):
    make_node(runner=True)
    calls = []
    real = runner.events_append

    def counting(**kwargs):
        calls.append(len(kwargs["events"]))
        return real(**kwargs)

    monkeypatch.setattr(runner, "events_append", counting)
    job = submit(params={"lines": 20000})
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED
    # The last batch is written with the end of the run, so the writes before it may hold
    # up to one batch less than everything.
    assert sum(calls) >= 20000 - runner.FLUSH_LINES
    assert len(calls) < 200, f"{len(calls)} writes for {sum(calls)} events"
    numbers = [int(line.split()[1]) for line in lines(job) if line.startswith("line ")]
    assert numbers == list(range(20000))


def test_a_job_past_its_time_limit_is_stopped_and_failed(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"seconds": 30}, time_limit=1)
    started = time.monotonic()
    place_and_run(job, enqueued)
    assert time.monotonic() - started < 10
    assert job.state == State.FAILED
    assert job.transitions.last().reason == "ran past its time limit of 0:00:01"


def test_a_silent_job_is_stopped_and_failed(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"seconds": 30, "silent": True})
    Job.objects.filter(pk=job.pk).update(silence_limit=2)
    started = time.monotonic()
    place_and_run(job, enqueued)
    assert time.monotonic() - started < 10
    assert job.state == State.FAILED
    assert "printed nothing and reported no progress" in job.transitions.last().reason


def _pid_of(job):
    for _ in range(200):
        found = [line for line in lines(job) if line.startswith("pid=")]
        if found:
            return int(found[0][4:])
        time.sleep(0.05)
    raise AssertionError("the job never printed its pid")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_cancel_stops_a_job_that_ignores_sigterm_within_5_seconds(
    make_node, submit, enqueued, alice
):
    make_node(runner=True)
    job = submit(params={"seconds": 60, "ignore_term": True})
    thread = in_thread(*placed(job, enqueued))
    pid = _pid_of(job)
    asked = time.monotonic()
    job_cancel(job=job, by=alice)
    thread.join(10)
    assert time.monotonic() - asked < 5
    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert job.transitions.last().reason == "cancelled by alice"
    assert not _alive(pid)


def test_a_superseded_run_is_stopped_and_writes_nothing(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"seconds": 60})
    job_id, placement = placed(job, enqueued)
    thread = in_thread(job_id, placement)
    pid = _pid_of(job)
    job_requeue(job=job, reason="node went offline", counts_as_attempt=True)
    thread.join(10)
    assert not thread.is_alive() and not _alive(pid)
    job.refresh_from_db()
    assert job.state == State.QUEUED and job.artifacts.count() == 0
    seq = job.event_seq
    assert not events_append(
        job_id=job_id, placement=placement, events=[{"type": "log", "line": "late"}]
    )
    job.refresh_from_db()
    assert job.event_seq == seq


def test_a_second_delivery_of_the_same_task_does_nothing(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(params={"seconds": 0.2})
    result, placement = place_and_run(job, enqueued)
    events = job.event_seq
    assert "nothing to do" in run_job(job.pk, placement)
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED and job.event_seq == events


def test_scratch_is_removed_but_the_last_few_are_kept(make_node, submit, enqueued, settings):
    settings.PORTAL_SCRATCH_KEEP = 2
    make_node(runner=True)
    for _ in range(4):
        place_and_run(submit(params={"seconds": 0}, force=True), enqueued)
    scratch = settings.WORKDIR / "scratch" / "n1"
    assert len(list(scratch.iterdir())) == 2


def test_cleanup_leaves_the_scratch_of_a_run_still_going_alone(
    make_node, submit, enqueued, settings
):
    settings.PORTAL_SCRATCH_KEEP = 1
    make_node(runner=True)
    # Another runner on the node is in the middle of its job: its directory is older.
    going = settings.WORKDIR / "scratch" / "n1" / "job-999-1"
    (going / "out").mkdir(parents=True)
    os.utime(going, (1, time.time() - 3600))
    for _ in range(3):
        place_and_run(submit(params={"seconds": 0}, force=True), enqueued)
    assert (going / "out").is_dir()
    assert len(list(going.parent.iterdir())) == 2


def test_a_resident_engine_loads_once_for_many_jobs(make_node, submit, enqueued):
    make_node(runner=True)
    pids = set()
    for number in range(1, 4):
        job = submit(kind="counter", params={"n": number})
        place_and_run(job, enqueued)
        assert job.state == State.SUCCEEDED, job.error
        said = next(line for line in lines(job) if line.startswith("loads="))
        loads, jobs, pid = (part.split("=")[1] for part in said.split()[:3])
        assert (loads, jobs) == ("1", str(number))
        pids.add(pid)
        assert default_storage.open(job.artifacts.get(name="count.txt").storage_key).read() == (
            f"1 {number}\n".encode()
        )
    assert len(pids) == 1
    os.kill(int(pids.pop()), signal.SIGKILL)


def test_an_engine_started_with_other_options_is_replaced_not_used(
    make_node, submit, enqueued, monkeypatch
):
    """A node's options for a kind's engine (its weights, here the counter's memory) changed
    while the engine stayed warm: the next job gets an engine started with the new ones."""
    make_node(runner=True)

    def run(number):
        job = submit(kind="counter", params={"n": number})
        place_and_run(job, enqueued)
        assert job.state == State.SUCCEEDED, job.error
        said = next(line for line in lines(job) if line.startswith("loads="))
        return lines(job), dict(part.split("=") for part in said.split()[:3])

    _, first = run(1)
    _, same = run(2)
    assert same["pid"] == first["pid"] and same["jobs"] == "2"
    monkeypatch.setenv("COUNTER_ENGINE_MEMORY", str(2**30))
    log, other = run(3)
    assert other["pid"] != first["pid"] and (other["loads"], other["jobs"]) == ("1", "1")
    assert any("was started with other options" in line for line in log)
    assert any("options={'memory': 1073741824}" in line for line in log)


def test_an_engine_job_that_ignores_cancel_is_killed_and_the_next_gets_a_new_engine(
    make_node, submit, enqueued, alice
):
    make_node(runner=True)
    job = submit(kind="counter", params={"seconds": 60, "ignore_cancel": True})
    thread = in_thread(*placed(job, enqueued))
    for _ in range(200):
        said = [line for line in lines(job) if line.startswith("loads=")]
        if said:
            break
        time.sleep(0.05)
    first_pid = int(said[0].split("pid=")[1].split()[0])
    asked = time.monotonic()
    job_cancel(job=job, by=alice)
    thread.join(10)
    assert time.monotonic() - asked < 5
    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert not _alive(first_pid)

    after = submit(kind="counter", params={"n": 2})
    place_and_run(after, enqueued)
    assert after.state == State.SUCCEEDED
    said = next(line for line in lines(after) if line.startswith("loads="))
    assert f"pid={first_pid}" not in said
    os.kill(int(said.split("pid=")[1].split()[0]), signal.SIGKILL)


def test_an_engine_job_that_raises_fails_with_the_error(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(kind="counter", params={"fail": True})
    place_and_run(job, enqueued)
    assert job.state == State.FAILED
    assert "RuntimeError: asked to fail" in job.error


def test_a_runner_goes_on_to_the_next_job_placed_on_its_slot(make_node, submit, enqueued):
    make_node(runner=True)  # one slot
    first = submit(params={"lines": 1})
    second = submit(params={"lines": 2})
    job_id, placement = placed(first, enqueued)
    assert [call[0] for call in enqueued] == [first.pk]

    result = run_job(job_id, placement)

    # Both ran in that one task; the second never went through the broker.
    assert (
        result == f"job {first.pk} placement {placement}: done, then job(s) {second.pk} on its slot"
    )
    assert [call[0] for call in enqueued] == [first.pk]
    for job in (first, second):
        job.refresh_from_db()
        assert job.state == State.SUCCEEDED
        assert job.attempt == 1
    assert second.started_at >= first.finished_at


def test_a_job_submitted_while_a_run_ends_is_not_left_waiting(
    make_node, submit, enqueued, monkeypatch
):
    make_node(runner=True)  # one slot
    first = submit(params={"lines": 1})
    job_id, placement = placed(first, enqueued)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one transaction write at a time: no submission meanwhile")
    late = []
    real_hand_over = runner.hand_over

    def hand_over(*args, **kwargs):
        following = real_hand_over(*args, **kwargs)
        if not late:
            # The run's end is not committed yet: a job comes in from elsewhere, and the
            # placement pass after its submission finds the slot still taken.
            def from_elsewhere():
                try:
                    late.append(submit(params={"lines": 2}))
                finally:
                    connections.close_all()

            thread = threading.Thread(target=from_elsewhere)
            thread.start()
            thread.join()
        return following

    monkeypatch.setattr(runner, "hand_over", hand_over)

    result = run_job(job_id, placement)

    # The runner looked again once its end was committed, and ran it.
    assert (
        result
        == f"job {first.pk} placement {placement}: done, then job(s) {late[0].pk} on its slot"
    )
    late[0].refresh_from_db()
    assert late[0].state == State.SUCCEEDED


def test_a_placement_that_fails_as_a_run_ends_loses_nothing(
    make_node, submit, enqueued, monkeypatch
):
    make_node(runner=True)
    job = submit(params={"lines": 3})
    job_id, placement = placed(job, enqueued)
    real_hand_over = runner.hand_over
    calls = []

    def hand_over(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the placement pass broke")
        return real_hand_over(*args, **kwargs)

    monkeypatch.setattr(runner, "hand_over", hand_over)

    assert run_job(job_id, placement) == f"job {job.pk} placement {placement}: done"

    # The pass took the end's transaction down with it; the end was stored on its own.
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED and job.progress == 100
    assert lines(job)[-3:] == ["line 1", "line 2", "done"]
    assert job.artifacts.filter(name="result.txt").exists()
    assert len(calls) == 2  # and the slot got its pass after all


def test_a_job_longer_than_the_task_has_left_goes_through_the_broker(
    make_node, submit, enqueued, settings
):
    make_node(runner=True)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 2 * 3600}
    first = submit(params={"lines": 1})
    # Its whole time limit does not fit in what the first job's task has left.
    second = submit(params={"lines": 2}, time_limit=2 * 3600)
    job_id, placement = placed(first, enqueued)

    assert run_job(job_id, placement) == f"job {first.pk} placement {placement}: done"

    second.refresh_from_db()
    assert second.state == State.QUEUED
    assert [call[0] for call in enqueued] == [first.pk, second.pk]
    assert enqueued[-1][1] == second.placement


def test_a_runner_does_not_go_on_when_its_node_is_draining(make_node, submit, enqueued):
    node = make_node(runner=True)
    first = submit(params={"lines": 1})
    second = submit(params={"lines": 2})
    job_id, placement = placed(first, enqueued)
    node.draining = True
    node.save(update_fields=["draining"])

    run_job(job_id, placement)

    second.refresh_from_db()
    assert second.state == State.QUEUED and second.node is None


def test_disabling_a_node_sends_the_jobs_running_there_back_to_the_queue(
    make_node, submit, enqueued, alice
):
    from django.contrib.admin.models import LogEntry

    from nodes.services import node_disable

    node = make_node(runner=True)
    job = submit(params={"seconds": 60})
    thread = in_thread(*placed(job, enqueued))
    for _ in range(200):
        if any(line.startswith("pid=") for line in lines(job)):
            break
        time.sleep(0.05)
    pid = int(next(line for line in lines(job) if line.startswith("pid="))[4:])

    node_disable(node=node, by=alice)
    thread.join(10)

    job.refresh_from_db()
    assert (job.state, job.node_id) == (State.QUEUED, None)
    assert job.transitions.last().reason == "its node was disabled"
    assert not _alive(pid)
    entry = LogEntry.objects.get(object_id=str(node.pk))
    assert (entry.user, entry.change_message) == (alice, "disabled the node")


def first_line(job, prefix):
    """The first log line of `job` starting with `prefix`, waited for (a run in a thread)."""
    for _ in range(400):
        found = [line for line in lines(job) if line.startswith(prefix)]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"job {job.pk} never said {prefix!r}: {lines(job)}")


def engine_pid(job) -> int:
    return int(first_line(job, "engine ").split("(pid ")[1].rstrip(")"))


def test_a_cpu_slot_and_a_gpu_get_engines_of_their_own(make_node, submit, enqueued):
    """The GPU is made up (PORTAL_FAKE_GPUS' kind of report): none exists here. The job on it
    runs on the CPU, pinned to it by CUDA_VISIBLE_DEVICES all the same."""
    from tests.jobs.conftest import fake_gpu

    make_node(runner=True, cpu_slots=1, gpus=[fake_gpu()])
    jobs = [submit(kind="counter", params={"seconds": 2, "n": n}) for n in (1, 2)]
    threads = [in_thread(*placed(job, enqueued)) for job in jobs]
    for thread in threads:
        thread.join(30)
    seen = {}
    for job in jobs:
        job.refresh_from_db()
        assert job.state == State.SUCCEEDED, job.error
        fields = dict(part.split("=") for part in first_line(job, "loads=").split())
        seen[job.slot] = fields
        # The kind's environment and the node's options reached the engine as it loaded.
        assert first_line(job, "greeting=") == "greeting=hello options={'memory': 0}"
    assert sorted(seen) == [0, 1]
    assert (seen[0]["slot"], seen[0]["gpu"]) == ("0", "0")
    assert (seen[1]["slot"], seen[1]["gpu"]) == ("1", "None")
    assert seen[0]["pid"] != seen[1]["pid"]
    for fields in seen.values():
        os.kill(int(fields["pid"]), signal.SIGKILL)


def test_cancel_while_the_engine_loads_ends_the_job_and_the_next_gets_a_fresh_engine(
    make_node, submit, enqueued, alice
):
    make_node(runner=True)
    job = submit(kind="slowload", params={"n": 1})
    thread = in_thread(*placed(job, enqueued))
    first_line(job, "loading weights: 2/60 s")  # the load's progress is in the job's log
    loading = engine_pid(job)

    asked = time.monotonic()
    job_cancel(job=job, by=alice)
    thread.join(10)
    assert time.monotonic() - asked < 5
    job.refresh_from_db()
    assert job.state == State.CANCELLED
    assert not _alive(loading)

    after = submit(kind="slowload", params={"n": 2})
    thread = in_thread(*placed(after, enqueued))
    assert engine_pid(after) != loading
    job_cancel(job=after, by=alice)
    thread.join(10)


def test_an_engine_that_cannot_load_fails_the_job_with_its_own_error(make_node, submit, enqueued):
    make_node(runner=True)
    job = submit(kind="broken")
    place_and_run(job, enqueued)
    assert job.state == State.FAILED
    error = "FileNotFoundError: no weights at /nowhere/model.ckpt; run `fetch-weights` first"
    assert job.transitions.last().reason == f"its engine failed: {error}"
    assert "looking for the weights" in lines(job)
    assert error in job.error


@pytest.mark.parametrize("gib, stopped", [(10, False), (30, True)])
def test_an_idle_engine_of_another_kind_makes_room_for_a_job_that_needs_its_gpu(
    make_node, submit, enqueued, monkeypatch, gib, stopped
):
    """A made-up GPU of 80 GiB (none exists here); the counter engine says it holds 60."""
    from jobs.engine_client import engines_dir
    from nodes.probe import warm_engine_report
    from tests.jobs.conftest import fake_gpu

    monkeypatch.setenv("COUNTER_ENGINE_MEMORY", str(60 * 2**30))
    make_node(runner=True, cpu_slots=0, gpus=[fake_gpu(memory=80 * 2**30)])
    warm = submit(kind="counter")
    place_and_run(warm, enqueued)
    engine = int(dict(p.split("=") for p in first_line(warm, "loads=").split())["pid"])
    # What the node's heartbeat reports.
    engines = warm_engine_report(engines_dir(settings.PORTAL_NODE_NAME))
    Node.objects.filter(name=settings.PORTAL_NODE_NAME).update(warm_engines=engines)

    job = submit(params={"gib": gib})
    place_and_run(job, enqueued)

    assert job.state == State.SUCCEEDED
    note = "stopped the idle counter engine on this GPU to make room"
    assert (note in lines(job)) == stopped
    assert _alive(engine) != stopped
    # The pool shows it at once, not at the next heartbeat.
    reported = Node.objects.get(name=settings.PORTAL_NODE_NAME).warm_engines
    assert [e["kind"] for e in reported] == ([] if stopped else ["counter"])
    if not stopped:
        os.kill(engine, signal.SIGKILL)
