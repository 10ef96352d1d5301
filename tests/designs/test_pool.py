"""Design campaigns on real processes: the portal (Daphne), the scheduler and two nodes
(`runnode`), each a process of its own, predicting with the tiny model (tests/boltzkit.py)."""

import csv
import io
import json
from collections import Counter

import pytest
from django.core.files.storage import default_storage

from designs.models import Candidate
from jobs.models import Job, State
from tests.conftest import boltz_ready, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CAMPAIGN = {
    "target": "MKTAYIAKQRQISFVKSHFSRQ",
    "length_min": 6,
    "length_max": 8,
    "population": 4,
    "generations": 3,
    "elites": 2,
    "seed": 23,
    "recycling_steps": 0,
    "sampling_steps": 5,
    "msa": "single",
}


def start(pool, project, alice) -> int:
    pool.add_nodes("node1", "node2", cpu_slots=1)
    for name in ("node1", "node2"):
        wait_until(lambda n=name: boltz_ready(n), 30, what=f"{name} to report boltz ready")
    return pool.client(alice).submit(project, kind="design", params=CAMPAIGN)["id"]


def finished(pk: int, timeout: float = 300) -> Job:
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, timeout, every=0.5, what="the campaign")
    return Job.objects.get(pk=pk)


def best_fitness(campaign: Job) -> list[float]:
    events = campaign.events.filter(type="metric").order_by("seq")
    return [e.data["value"] for e in events if e.data["name"] == "best_fitness"]


def test_a_campaign_spreads_its_candidates_over_two_nodes_and_repeats_for_its_seed(
    boltz_stack, project, alice
):
    campaign = finished(start(boltz_stack, project, alice))
    assert campaign.state == State.SUCCEEDED, campaign.error
    children = Job.objects.filter(parent=campaign)
    assert children.count() == 8 and set(children.values_list("state", flat=True)) == {
        State.SUCCEEDED
    }
    assert set(children.values_list("node__name", flat=True)) == {"node1", "node2"}
    best = best_fitness(campaign)
    assert len(best) == 3 and best == sorted(best)
    table = default_storage.open(campaign.artifacts.get(name="candidates.csv").storage_key)
    for row in csv.DictReader(io.StringIO(table.read().decode())):
        child = Job.objects.get(pk=int(row["job"]))
        key = child.artifacts.get(name=f"confidence_job-{child.pk}_model_0.json").storage_key
        confidence = json.loads(default_storage.open(key).read())
        assert float(row["pair_iptm"]) == pytest.approx(
            confidence["pair_chains_iptm"]["0"]["1"], abs=1e-4
        )

    # The same seed, another campaign: the same candidates, generation by generation.
    again = finished(
        boltz_stack.client(alice).submit(project, kind="design", params=CAMPAIGN)["id"]
    )
    assert again.state == State.SUCCEEDED, again.error

    def bred(job):
        return list(
            Candidate.objects.filter(campaign=job)
            .order_by("generation", "index")
            .values_list("generation", "sequence")
        )

    def scored(job):
        return list(
            Candidate.objects.filter(campaign=job)
            .order_by("generation", "index")
            .values_list("sequence", "fitness", "job__node__name", "job__attempt")
        )

    assert bred(again) == bred(campaign), (scored(campaign), scored(again))


def test_kill_9_of_a_node_and_the_scheduler_mid_generation_loses_and_repeats_nothing(
    boltz_stack, project, alice
):
    pk = start(boltz_stack, project, alice)
    # Mid second generation: its candidates exist and one is running.
    wait_until(
        lambda: Job.objects.filter(
            candidate__campaign_id=pk, candidate__generation=1, state=State.RUNNING
        ).exists(),
        240,
        every=0.2,
        what="the second generation to run",
    )
    for process in (boltz_stack.nodes["node1"], boltz_stack.scheduler):
        process.kill()
    boltz_stack.scheduler.start()
    boltz_stack.nodes["node1"].start()
    campaign = finished(pk)
    assert campaign.state == State.SUCCEEDED, campaign.error
    # No candidate was predicted twice: one child job per sequence and generation.
    per_candidate = Counter(
        Job.objects.filter(parent=campaign).values_list(
            "candidate__generation", "candidate__sequence"
        )
    )
    assert len(per_candidate) == 8 and set(per_candidate.values()) == {1}
    assert Candidate.objects.filter(campaign=campaign, fitness__isnull=False).count() == 8
    best = best_fitness(campaign)
    assert len(best) == 3 and best == sorted(best)
