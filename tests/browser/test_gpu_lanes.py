"""Jobs sharing a GPU on a real node (`runnode`, lanes by memory, the default): small Boltz-2
predictions run side by side while their estimates fit, one that would not fit waits, a large
one has the GPU alone; a job that runs out of GPU memory beside another goes back in the queue
once and then runs alone; the pool page shows the GPU's lanes as they fill.

The GPU is made up (PORTAL_FAKE_GPUS, 10.1 GiB; none exists here): the jobs run on the CPU,
each in its lane's own engine, and placement keeps to the GPU's memory as on a real one. A
22-residue prediction is estimated at 4.51 GiB and a 120-residue one at 4.68
(predictions/memory.py), with 1 GiB of headroom (PORTAL_GPU_HEADROOM's default): two small ones
fit (10.01 GiB), three do not, the large one fits only alone (10.19 beside a small one)."""

import json

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job, State
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import boltz_ready, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

GIB = 2**30
GPU = json.dumps([{"name": "made-up 10.1 GiB", "memory_total": int(10.1 * GIB)}])
FAST = {"recycling_steps": 0, "sampling_steps": 5, "msa": "single"}


def protein(sequence: str) -> dict:
    return {"sequences": [{"protein": {"id": "A", "sequence": sequence}}]}


def overlap(a: Job, b: Job) -> bool:
    return a.started_at < b.finished_at and b.started_at < a.finished_at


def test_predictions_share_a_gpu_by_memory_and_the_pool_page_shows_its_lanes(
    boltz_stack, project, alice, browser_page
):
    get_user_model().objects.create_superuser("ops", password="ops-password")
    boltz_stack.add_nodes("gpu-a", cpu_slots=0, PORTAL_FAKE_GPUS=GPU)
    wait_until(lambda: boltz_ready("gpu-a"), 30, what="the node to report boltz ready")
    page = browser_page
    sign_in(page, boltz_stack.url, "ops", "ops-password")
    page.goto(f"{boltz_stack.url}/nodes/")
    lanes = "#pool tr[data-node='gpu-a'] .lanes"
    page.wait_for_selector(f"{lanes} [data-lanes='0/8']")

    client = boltz_stack.client(alice)
    small = [
        client.submit(project, kind="predict", params={"input": protein(s), **FAST})["id"]
        for s in ("MKTAYIAKQRQISFVKSHFSRQ", "GSHMKVLAAGIVGLPNVGKSTL", "MADEEKLPPGWEKRMSRSSGRV")
    ]
    large = client.submit(
        project, kind="predict", params={"input": protein("MKTAYIAKQR" * 12), **FAST}
    )["id"]
    # Two small ones run at once, each in its lane: the page shows both.
    page.wait_for_selector(f"{lanes} [data-lanes='2/8']", timeout=30_000)
    assert "#" in page.inner_text(f"{lanes} .lane-busy")
    screenshot(page, "gpu-lanes")

    ids = [*small, large]
    wait_until(lambda: all(Job.objects.get(pk=pk).is_finished for pk in ids), 180, what="the jobs")
    jobs = [Job.objects.get(pk=pk) for pk in ids]
    assert [j.state for j in jobs] == [State.SUCCEEDED] * 4, [j.error for j in jobs]
    first, second, third, big = jobs
    assert {j.gpu for j in jobs} == {0} and first.slot != second.slot
    assert overlap(first, second)
    # The third would not fit beside both: it started once one of them ended.
    assert third.started_at >= min(first.finished_at, second.finished_at)
    # The large one shared the GPU with nothing.
    assert not [j for j in (first, second, third) if overlap(j, big)]
    assert big.gpu_memory > 4.6 * GIB > first.gpu_memory

    # A job out of GPU memory beside another (the test engine raises torch's
    # OutOfMemoryError once) goes back in the queue and runs again when the GPU is its own.
    other = client.submit(project, kind="counter", params={"gib": 4, "seconds": 4})["id"]
    wait_until(lambda: Job.objects.get(pk=other).state == State.RUNNING, 30, what="the other")
    oom = client.submit(project, kind="counter", params={"gib": 4, "oom_once": True})["id"]
    wait_until(
        lambda: all(Job.objects.get(pk=pk).is_finished for pk in (other, oom)), 60, what="both"
    )
    other, oom = Job.objects.get(pk=other), Job.objects.get(pk=oom)
    assert (other.state, oom.state) == (State.SUCCEEDED, State.SUCCEEDED)
    assert oom.gpu_alone and oom.attempt == 2 and oom.started_at >= other.finished_at
    reasons = list(oom.transitions.values_list("reason", flat=True))
    assert any(r.startswith("it ran out of GPU memory (OutOfMemoryError") for r in reasons)
