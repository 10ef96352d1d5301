"""Design campaigns on the tiny model (tests/boltzkit.py): a parent job that holds no slot,
its candidates child predictions, moved on by the scheduler's step (`advance`), in this
process; tests/designs/test_pool.py runs them on real node processes."""

import csv
import io
import json
import time

import pytest
from django.core.files.storage import default_storage

from designs.campaigns import advance
from designs.constraints import fraction_met
from designs.models import Candidate
from designs.search import fitness
from jobs.models import Job, State
from jobs.placement import place_queued_jobs
from jobs.runner import run_job
from jobs.services import job_cancel, job_finish, job_start
from predictions.results import record_name
from tests.jobs.test_runner import beat

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TARGET = "MKTAYIAKQRQISFVKSHFSRQ"
SMALL = {
    "target": TARGET,
    "length_min": 6,
    "length_max": 8,
    "population": 4,
    "generations": 3,
    "elites": 2,
    "seed": 11,
    "recycling_steps": 0,
    "sampling_steps": 5,
    "msa": "single",
}


@pytest.fixture
def node(boltz_cache, settings, make_node):
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    return make_node(runner=True, cpu_slots=1, engines={"boltz": {"ready": True}})


def design(api, user, project, **params):
    response = api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "design", "params": {**SMALL, **params}},
        format="json",
    )
    assert response.status_code == 201, response.content
    return Job.objects.get(pk=response.json()["id"])


def run_queued(enqueued, fail=()):
    """Run every queued job on the node (a candidate whose sequence is in `fail` fails as a
    node would report it), as the node's runner would, one after another."""
    while True:
        beat()
        place_queued_jobs()
        pending = [c for c in enqueued if not Job.objects.get(pk=c[0]).is_finished]
        if not pending:
            return
        for job_id, placement, _ in pending:
            job = Job.objects.get(pk=job_id)
            if job.state != State.QUEUED or job.placement != placement:
                continue
            if any(job.name.endswith(sequence) for sequence in fail):
                job_start(job_id=job_id, placement=placement, node_name="n1", boot_id="boot-1")
                job_finish(
                    job_id=job_id,
                    placement=placement,
                    state=State.FAILED,
                    reason="its engine failed: a test made it fail",
                    error="a test made it fail",
                )
            else:
                run_job(job_id, placement)


def run_campaign(campaign, enqueued, fail=()):
    # Steps, each followed by running what it submitted, until the campaign ends (by a time
    # limit rather than a count: a placement pass may run in the placer's thread meanwhile).
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        advance(campaign.pk)
        campaign.refresh_from_db()
        if campaign.is_finished:
            return campaign
        run_queued(enqueued, fail)
        time.sleep(0.05)
    children = Job.objects.filter(parent=campaign).values_list("pk", "state", "node__name")
    raise AssertionError(f"the campaign did not end: {campaign.progress_message}; {list(children)}")


def metric_points(job, name):
    return [
        (e.data["step"], e.data["value"])
        for e in job.events.filter(type="metric").order_by("seq")
        if e.data["name"] == name
    ]


def artifact(job, name) -> bytes:
    return default_storage.open(job.artifacts.get(name=name).storage_key).read()


def test_a_campaign_searches_its_generations_and_ranks_its_candidates(
    node, api, alice, project, enqueued, client
):
    campaign = design(api, alice, project)
    assert campaign.state == State.RUNNING and campaign.node_id is None
    run_campaign(campaign, enqueued)
    assert campaign.state == State.SUCCEEDED, campaign.error
    # Its progress says how it ended, not the last generation's "about … left".
    ended = campaign.transitions.order_by("-at", "-id").first()
    assert campaign.progress == 100 and campaign.progress_message == ended.reason
    candidates = list(campaign.candidates.order_by("generation", "index"))
    # 4, then 2 new beside 2 elites each generation; none predicted twice.
    assert [c.generation for c in candidates] == [0] * 4 + [1] * 2 + [2] * 2
    assert len({c.sequence for c in candidates}) == len(candidates)
    assert Job.objects.filter(parent=campaign, kind="predict").count() == len(candidates)
    best = [value for _, value in metric_points(campaign, "best_fitness")]
    assert len(best) == 3 and best == sorted(best)
    assert [step for step, _ in metric_points(campaign, "mean_fitness")] == [1, 2, 3]

    # The CSV is the children's own figures: their best sample's binder-target ipTM.
    rows = list(csv.DictReader(io.StringIO(artifact(campaign, "candidates.csv").decode())))
    assert len(rows) == len(candidates)
    for row in rows:
        child = Job.objects.get(pk=int(row["job"]))
        confidence = json.loads(artifact(child, f"confidence_job-{child.pk}_model_0.json"))
        assert float(row["pair_iptm"]) == pytest.approx(
            confidence["pair_chains_iptm"]["0"]["1"], abs=1e-4
        )
        assert child.candidate.sequence == row["sequence"]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    top = rows[0]
    # The candidates are grouped under their campaign in the list, shown when asked; a
    # candidate's page says its place in the campaign.
    client.force_login(alice)
    listed = client.get("/jobs/").content.decode()
    assert f"/jobs/{top['job']}/" not in listed and "+ 8 jobs it ran" in listed
    assert f"/jobs/{top['job']}/" in client.get("/jobs/?children=1").content.decode()
    page = client.get(f"/jobs/{top['job']}/").content.decode()
    assert f"fitness {float(top['fitness']):.3f}, rank 1 of 8 scored" in page
    assert artifact(campaign, f"rank-01_{top['sequence']}.cif") == artifact(
        Job.objects.get(pk=int(top["job"])), f"job-{top['job']}_model_0.cif"
    )
    provenance = json.loads(artifact(campaign, "campaign.json"))
    assert provenance["params"]["seed"] == 11 and provenance["best_fitness_per_generation"] == best

    # The API gives them ranked, each with its child job.
    listed = api(alice).get(f"/api/v1/jobs/{campaign.pk}/candidates/").json()
    assert [c["sequence"] for c in listed["results"]] == [r["sequence"] for r in rows]
    assert listed["results"][0]["rank"] == 1 and listed["results"][0]["job"] == int(top["job"])

    # The same seed gives the same candidates.
    again = run_campaign(design(api, alice, project), enqueued)
    assert [c.sequence for c in again.candidates.order_by("generation", "index")] == [
        c.sequence for c in candidates
    ]


def test_a_failed_candidate_is_left_out_and_the_campaign_still_ends(
    node, api, alice, project, enqueued
):
    campaign = design(api, alice, project, generations=2, seed=5)
    advance(campaign.pk)
    doomed = campaign.candidates.order_by("index").first()
    run_queued(enqueued, fail=[doomed.sequence])
    run_campaign(campaign, enqueued)
    assert campaign.state == State.SUCCEEDED, campaign.error
    doomed.refresh_from_db()
    assert doomed.failed and "a test made it fail" in doomed.error
    assert "failed" in json.dumps([e.data for e in campaign.events.filter(type="log")])
    rows = list(csv.DictReader(io.StringIO(artifact(campaign, "candidates.csv").decode())))
    failed = next(r for r in rows if r["sequence"] == doomed.sequence)
    assert failed["rank"] == "" and failed["fitness"] == ""


def test_cancelling_a_campaign_cancels_its_waiting_candidates(node, api, alice, project, enqueued):
    campaign = design(api, alice, project)
    advance(campaign.pk)
    assert Job.objects.filter(parent=campaign, state=State.QUEUED).count() == 4
    job_cancel(job=campaign, by=alice)
    campaign.refresh_from_db()
    assert campaign.state == State.CANCELLED
    assert set(Job.objects.filter(parent=campaign).values_list("state", flat=True)) == {
        State.CANCELLED
    }


def test_a_generation_that_fails_whole_fails_the_campaign_with_the_reason(
    node, api, alice, project, enqueued
):
    campaign = design(api, alice, project, generations=2, seed=6)
    advance(campaign.pk)
    run_queued(enqueued, fail=list(campaign.candidates.values_list("sequence", flat=True)))
    advance(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == State.FAILED
    assert campaign.transitions.last().reason == "every candidate of generation 1 failed"
    assert campaign.candidates.count() == 4  # no second generation bred


def test_the_targets_msa_is_searched_once_and_named_by_every_candidate(
    node, api, alice, project, enqueued, settings
):
    from tests.msa.colabfold_server import ColabFoldServer

    server = ColabFoldServer()
    settings.PORTAL_MSA_SERVER_URL, settings.PORTAL_MSA_SERVER_POLL = server.url, 0.05
    node.engines = {"boltz": {"ready": True}, "msa_server": {"ready": True}}
    node.save()
    try:
        campaign = design(api, alice, project, msa="server", generations=1)
        advance(campaign.pk)
        search = Job.objects.get(parent=campaign, kind="msa")
        assert search.params["chains"] == [{"id": "A", "sequence": TARGET}]
        run_queued(enqueued)
        advance(campaign.pk)
        children = Job.objects.filter(parent=campaign, kind="predict")
        assert children.count() == 4
        msas = {c.params["input"]["sequences"][0]["protein"]["msa"] for c in children}
        (upload,) = msas  # one MSA, an upload of the project, in every candidate
        assert project.uploads.get(pk=upload).name == f"design-{campaign.pk}-target.a3m"
        run_campaign(campaign, enqueued)
        assert campaign.state == State.SUCCEEDED, campaign.error
        assert len(server.searches) == 1
    finally:
        server.stop()


def test_constraints_apply_to_every_candidate_and_bad_parameters_are_a_400(
    node, api, alice, project, enqueued
):
    pocket = [{"pocket": {"binder": "B", "contacts": [["A", 3], ["A", 5]]}}]
    campaign = design(api, alice, project, constraints=pocket, generations=1)
    advance(campaign.pk)
    for child in Job.objects.filter(parent=campaign):
        assert child.params["input"]["constraints"][0]["pocket"]["binder"] == "B"
    # Each candidate is scored on how many of the two pocket residues its binder came near in
    # the structure predicted, and its fitness scaled by that.
    run_campaign(campaign, enqueued)
    rows = api(alice).get(f"/api/v1/jobs/{campaign.pk}/candidates/").json()["results"]
    scored = [row for row in rows if row["fitness"] is not None]
    assert scored and {row["constraints_met"] for row in scored} <= {0.0, 0.5, 1.0}
    for row in scored:
        candidate = Candidate.objects.get(campaign=campaign, sequence=row["sequence"])
        record = record_name(candidate.job.params, candidate.job.pk)
        cif = artifact(candidate.job, f"{record}_model_0.cif")
        assert row["constraints_met"] == fraction_met(pocket, cif.decode())
        unscaled = fitness(row["pair_iptm"], row["binder_plddt"], row["developability"])
        assert row["fitness"] == pytest.approx(unscaled * row["constraints_met"])
    assert "constraints_met" in artifact(campaign, "candidates.csv").decode().splitlines()[0]

    def refused(**params):
        response = api(alice).post(
            "/api/v1/jobs/",
            {"project": project.pk, "kind": "design", "params": {**SMALL, **params}},
            format="json",
        )
        assert response.status_code == 400, response.content
        return json.dumps(response.json())

    assert "length_max" in refused(length_min=12, length_max=8)
    assert "elites" in refused(elites=4, population=4)
    assert "glycan" in refused(binder_type="glycopeptide")
    assert "chain C is not in the input" in refused(
        constraints=[{"pocket": {"binder": "B", "contacts": [["C", 3]]}}]
    )
    assert "The target is a protein sequence" in refused(target="MKT1AY")
    assert Job.objects.filter(kind="design").count() == 1
