"""Jobs sharing a GPU (lanes): placement by memory estimates, in this process (the broker
replaced by a list). The GPUs are made up, 12 GiB each; the `sleep` kind estimates the memory
its `gib` parameter says, and shares a GPU where a test says so."""

import pytest

from jobs.kinds import get_kind
from jobs.models import Job, State
from jobs.placement import place_queued_jobs
from jobs.runner import run_job
from jobs.services import job_finish, job_requeue, job_start
from tests.jobs.conftest import fake_gpu

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database]

GIB = 2**30


@pytest.fixture
def sharing(monkeypatch, settings):
    monkeypatch.setattr(get_kind("sleep"), "shares_gpu", True)
    settings.PORTAL_GPU_HEADROOM = 2 * GIB


def where(job) -> tuple:
    job.refresh_from_db()
    return (job.gpu, job.slot) if job.node_id else None


def end(job) -> None:
    job.refresh_from_db()
    started = job_start(
        job_id=job.pk, placement=job.placement, node_name=job.node.name, boot_id="b"
    )
    job_finish(job_id=job.pk, placement=started.placement, state=State.SUCCEEDED, reason="done")


def test_jobs_share_a_gpu_while_their_estimates_and_the_headroom_fit(
    make_node, submit, enqueued, sharing
):
    make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    first, second, third = (submit(params={"gib": 4, "n": n}) for n in range(3))
    # 4 + 4 + 2 of headroom fit in 12; a third 4 does not.
    assert (where(first), where(second), where(third)) == ((0, 0), (0, 1), None)
    end(first)
    place_queued_jobs()
    assert where(third) == (0, 0)  # the lane the first left


def test_a_job_that_does_not_share_has_its_gpu_alone_and_waits_for_it_empty(
    make_node, submit, enqueued, sharing, monkeypatch
):
    make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    small = submit(params={"gib": 4})
    big = submit(params={"gib": 7})  # 4 + 7 + 2 > 12: it waits for the GPU to empty
    loner = submit(params={"n": 1})  # no estimate: it shares nothing
    assert (where(small), where(big), where(loner)) == ((0, 0), None, None)
    end(small)
    place_queued_jobs()
    assert where(big) == (0, 0) and where(loner) is None
    # Nothing joins a job that runs alone, however small.
    end(big)
    place_queued_jobs()
    assert where(loner) == (0, 0)
    late = submit(params={"gib": 1, "n": 2})
    assert where(late) is None
    end(loner)
    place_queued_jobs()
    assert where(late) == (0, 0)


def test_jobs_spread_over_gpus_before_they_share_one_and_a_warm_lane_comes_first(
    make_node, submit, enqueued, sharing
):
    node = make_node("box", cpu_slots=0, gpus=[fake_gpu(0), fake_gpu(1)], lanes=2)
    assert [(s["slot"], s["gpu"], s["lane"]) for s in node.slots()] == [
        (0, 0, 0),
        (1, 0, 1),
        (2, 1, 0),
        (3, 1, 1),
    ]
    a, b, c = (submit(params={"gib": 4, "n": n}) for n in range(3))
    assert sorted([where(a), where(b)]) == [(0, 0), (1, 2)] and where(c)[1] in (1, 3)
    for job in (a, b, c):
        end(job)
    # The second GPU's second lane keeps a warm counter engine: it takes the next counter job.
    node.warm_engines = [
        {
            "engine": get_kind("counter").engine,
            "kind": "counter",
            "slot": 3,
            "gpu": 1,
            "state": "idle",
            "memory": GIB,
        }
    ]
    node.save()
    assert where(submit(kind="counter", params={"gib": 4})) == (1, 3)


def test_a_waiting_jobs_page_says_what_it_waits_for(
    make_node, submit, enqueued, sharing, client, alice
):
    client.force_login(alice)

    def says(job) -> str:
        page = client.get(f"/jobs/{job.pk}/").content.decode()
        return page.split('id="job-where">')[1].split("</span>")[0]

    node = make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    running = submit(params={"gib": 4})
    big, loner = submit(params={"gib": 7}), submit(params={"n": 1})
    assert where(running) == (0, 0)
    small = submit(params={"gib": 1, "n": 2})  # it would fit beside the running job, but
    place_queued_jobs()  # the GPU is kept for the larger job before it to empty
    assert where(small) is None
    assert says(big) == "waiting: number 1 in the queue, for a GPU with 7.0 GiB free"
    assert says(loner) == "waiting: number 2 in the queue, for a GPU of its own"
    assert says(small) == (
        f"waiting: number 3 in the queue, behind job #{big.pk}, for which a GPU is kept until "
        "it empties"
    )
    # Scripts read the same in the job's API.
    assert client.get(f"/api/v1/jobs/{big.pk}/").json()["waiting"] == says(big)
    assert client.get(f"/api/v1/jobs/{running.pk}/").json()["waiting"] == ""
    # With the node gone, it waits for one.
    node.last_heartbeat_at = None
    node.save()
    assert says(big).endswith("in the queue, for a node: none is up")
    assert says(running).startswith("node box, GPU 0")


def test_a_job_back_in_the_queue_to_run_alone_waits_for_an_empty_gpu(
    make_node, submit, enqueued, sharing
):
    make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    other, oom = submit(params={"gib": 4}), submit(params={"gib": 4, "n": 1})
    assert where(oom) == (0, 1)
    started = job_start(job_id=oom.pk, placement=1, node_name="box", boot_id="b")
    assert job_requeue(job=started, reason="it ran out of GPU memory", alone=True)
    oom.refresh_from_db()
    assert oom.gpu_alone and oom.state == State.QUEUED
    place_queued_jobs()
    assert where(oom) is None  # the other job still runs on the GPU
    end(other)
    place_queued_jobs()
    assert where(oom) == (0, 0)


def test_one_lane_a_gpu_is_one_job_a_gpu(make_node, submit, enqueued, sharing):
    make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=80 * GIB)], lanes=1)
    jobs = [submit(params={"gib": 1, "n": n}) for n in range(2)]
    assert [where(j) for j in jobs] == [(0, 0), None]
    assert Job.objects.filter(node__isnull=False).count() == 1


def test_a_job_out_of_gpu_memory_beside_another_runs_again_alone_once(
    make_node, submit, enqueued, sharing
):
    """The counter engine raises torch's OutOfMemoryError the first time the job runs."""
    from tests.jobs.test_runner import lines, placed

    make_node(runner=True, cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=2)
    other = submit(kind="counter", params={"gib": 4})
    oom = submit(kind="counter", params={"gib": 4, "oom_once": True})
    other_task, oom_task = placed(other, enqueued), placed(oom, enqueued)
    assert (where(other), where(oom)) == ((0, 0), (0, 1))

    run_job(*oom_task)
    oom.refresh_from_db()
    assert (oom.state, oom.gpu_alone, oom.node) == (State.QUEUED, True, None)
    said = [e.data["reason"] for e in oom.events.filter(type="state")]
    assert said[-1].startswith("it ran out of GPU memory (OutOfMemoryError: CUDA out of memory")
    assert said[-1].endswith("to run with the GPU to itself (no other job, no idle engine)")

    # It waits while the other job holds the GPU; the other's runner takes it on after it.
    place_queued_jobs()
    assert where(oom) is None
    run_job(*other_task)
    oom.refresh_from_db()
    assert oom.state == State.SUCCEEDED and oom.attempt == 2
    assert any(line.startswith("loads=1 jobs=2") for line in lines(oom))


def test_an_engine_told_to_stop_during_a_job_finishes_it_first(tmp_path):
    """Another lane's runner making room stops idle engines; one that took a job meanwhile
    serves it whole, then goes."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from django.conf import settings as django_settings

    from jobs.engine_server import END
    from tests.conftest import wait_until

    path = tmp_path / "counter.sock"
    engine = subprocess.Popen(
        [sys.executable, "-m", "jobs.engine_server", "--engine", "tests.jobprograms.CounterEngine",
         "--kind", "counter", "--socket", str(path), "--slot", "0"],
        cwd=django_settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(path.exists, 30, what="the engine to listen")
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(str(path))
            request = {"job_id": 1, "seconds": 1.5, "out": str(tmp_path)}
            connection.sendall((json.dumps(request) + "\n").encode())
            time.sleep(0.3)
            os.kill(engine.pid, signal.SIGTERM)
            said = connection.makefile("r").read()
        end = next(line for line in said.splitlines() if line.startswith(END))
        assert json.loads(end[len(END) :]) == {"status": "ok"}
        assert (tmp_path / "count.txt").exists()
        assert engine.wait(5) == 0
    finally:
        engine.kill()


@pytest.mark.parametrize("needed, stopped", [(4 * GIB, [3]), (None, [2, 3])])
def test_making_room_stops_idle_engines_of_free_lanes_only_until_the_job_fits(
    settings, tmp_path, needed, stopped
):
    """The engines are stand-ins (`sleep` processes with the status files engines keep): on a
    12 GiB GPU, the job's own lane (slot 0) keeps its warm engine, another job's lane (slot 1)
    keeps its busy one, and idle engines of free lanes (slot 2: the job's engine class, slot
    3: another) go, another class's first, until the job's estimate fits (all of them for a
    job without one)."""
    import json
    import subprocess
    from types import SimpleNamespace

    from jobs.engine_client import engines_dir, make_room

    settings.PORTAL_NODE_NAME, settings.PORTAL_GPU_HEADROOM = "box", GIB
    folder = engines_dir("box")
    folder.mkdir(parents=True, exist_ok=True)
    processes = {}
    for slot, engine, state in [(0, "E1", "idle"), (1, "E1", "busy"), (2, "E1", "idle"),
                                (3, "E2", "idle")]:  # fmt: skip
        process = subprocess.Popen(["sleep", "60"], start_new_session=True)
        processes[slot] = process
        status = {"engine": engine, "kind": engine.lower(), "slot": slot, "gpu": 0,
                  "state": state, "memory": 3 * GIB if slot != 1 else 4 * GIB,
                  "pid": process.pid}  # fmt: skip
        (folder / f"{engine}-slot{slot}.json").write_text(json.dumps(status))
    kind = SimpleNamespace(name="e1", engine="E1")
    try:
        said = list(make_room(kind, 0, 0, needed, 12 * GIB, {1: 4 * GIB}))
        gone = [slot for slot, process in processes.items() if process.poll() is not None]
        assert gone == stopped
        assert len(said) == len(stopped) and all("to make room" in line for line in said)
    finally:
        for process in processes.values():
            process.kill()
            process.wait()
        for status in folder.glob("*.json"):
            status.unlink()


def test_a_claim_checks_the_fit_again_against_what_another_pass_placed_meanwhile(
    make_node, submit, enqueued, sharing
):
    """Two passes at once: this one read the GPU empty, another has placed a job on one of
    its lanes since; the claim of another lane sees it and refuses."""
    from jobs.placement import Waiting, claim

    node = make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    first = submit(params={"gib": 7})
    assert where(first) == (0, 0)
    late = submit(params={"gib": 5, "n": 1})  # 7 + 5 + 2 > 12: it waits
    assert where(late) is None
    row = Job.objects.filter(pk=late.pk).values(*Waiting.__dataclass_fields__).get()
    lane = node.slots()[1]
    assert not claim(Waiting(**row), node, lane, get_kind("sleep"))
    assert where(late) is None


def test_a_large_job_waiting_for_a_gpu_to_empty_is_not_overtaken_by_smaller_ones(
    make_node, submit, enqueued, sharing
):
    make_node("box", cpu_slots=0, gpus=[fake_gpu(0, memory=12 * GIB)], lanes=4)
    small = submit(params={"gib": 4})
    large = submit(params={"gib": 9})  # 4 + 9 + 2 > 12: it waits for the GPU to empty
    later = submit(params={"gib": 4, "n": 1})  # would fit beside the first: it waits behind
    assert (where(small), where(large), where(later)) == ((0, 0), None, None)
    end(small)
    place_queued_jobs()
    assert where(large) == (0, 0) and where(later) is None
