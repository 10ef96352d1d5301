"""Placement knows the engines a node keeps warm, from its heartbeats: a job goes where its
kind's engine is warm, and not where it would not fit beside another kind's.

The node's two GPUs are made up (PORTAL_FAKE_GPUS; none exists here): the jobs run on the
CPU, each pinned to "its" GPU all the same. The counter engine holds the GPU memory the
node's option says (COUNTER_ENGINE_MEMORY), as a model's weights would.
"""

import json
import os
import signal

import pytest

from jobs.models import Job, State
from nodes.models import Node
from tests.conftest import wait_until

pytestmark = pytest.mark.slow

GIB = 2**30
TWO_GPUS = json.dumps([{"name": "made-up 80 GB", "memory_total": 80 * GIB}] * 2)


def job(pk) -> Job:
    return Job.objects.get(pk=pk)


def warm(name, kind, slot):
    """Wait until the node's heartbeat reports its `kind` engine warm on `slot`."""
    return wait_until(
        lambda: [
            e
            for e in Node.objects.get(name=name).warm_engines
            if (e["kind"], e["slot"], e["state"]) == (kind, slot, "idle")
        ],
        20,
        what=f"a warm {kind} engine on slot {slot}",
    )[0]


def engine_pid(pk) -> int:
    line = job(pk).events.filter(data__line__startswith="loads=").first().data["line"]
    return int(line.split("pid=")[1].split()[0])


def test_a_job_goes_to_the_free_slot_whose_engine_for_its_kind_is_warm(orm_stack, project, alice):
    orm_stack.add_nodes("gpus", cpu_slots=0, PORTAL_FAKE_GPUS=TWO_GPUS)
    client = orm_stack.client(alice)
    blocker = client.submit(project, params={"seconds": 120})["id"]
    wait_until(lambda: job(blocker).state == State.RUNNING, 30, what="the blocker to run")
    first = client.submit(project, kind="counter")["id"]
    wait_until(lambda: job(first).state == State.SUCCEEDED, 30, what="the first counter")
    # Each job alone on its GPU (neither has a memory estimate to share it by).
    assert (job(blocker).gpu, job(first).gpu) == (0, 1)
    client.post(f"/api/v1/jobs/{blocker}/cancel/")
    wait_until(lambda: job(blocker).state == State.CANCELLED, 10, what="the blocker to end")
    warm("gpus", "counter", job(first).slot)

    # Both GPUs are free; the lane whose counter engine is warm takes the counter job.
    second = client.submit(project, kind="counter", params={"n": 2})["id"]
    wait_until(lambda: job(second).state == State.SUCCEEDED, 30, what="the second counter")
    assert job(second).slot == job(first).slot
    assert engine_pid(second) == engine_pid(first)  # the same engine, loaded once
    assert job(second).events.filter(data__line__startswith="loads=1 jobs=2").exists()


def test_a_job_that_does_not_fit_beside_a_warm_engine_goes_to_another_gpu(
    orm_stack, project, alice
):
    orm_stack.add_nodes(
        "gpus", cpu_slots=0, PORTAL_FAKE_GPUS=TWO_GPUS, COUNTER_ENGINE_MEMORY=60 * GIB
    )
    client = orm_stack.client(alice)
    counter = client.submit(project, kind="counter")["id"]
    wait_until(lambda: job(counter).state == State.SUCCEEDED, 30, what="the counter job")
    engine = warm("gpus", "counter", 0)
    assert engine["memory"] == 60 * GIB

    # 30 GiB does not fit beside the engine's 60 on an 80 GiB GPU: the other GPU it is.
    big = client.submit(project, params={"gib": 30})["id"]
    wait_until(lambda: job(big).state == State.SUCCEEDED, 30, what="the big job")
    assert job(big).gpu_memory == 30 * GIB and job(big).gpu == 1
    # The engine stayed warm for its kind's next job.
    said = [e.data.get("line", "") for e in job(big).events.filter(type="log")]
    assert not [line for line in said if "make room" in line]
    os.kill(engine_pid(counter), signal.SIGKILL)
