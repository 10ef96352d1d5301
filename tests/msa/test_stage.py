"""A prediction's MSA stage: the proteins that name no MSA get one from the job's `msa` source
(the ColabFold-protocol server of tests/msa/colabfold_server.py, on loopback, or a node's local
database) through an `msa` job on a CPU slot, while the prediction waits holding no GPU; then
boltz (the tiny model of tests/boltzkit.py) predicts with those rows."""

import io
import json
from datetime import timedelta

import numpy as np
import pytest
import yaml
from django.core.files.storage import default_storage
from django.utils import timezone

from jobs.models import Job, State
from jobs.services import job_cancel
from msa.kinds import a3m_rows, boltz_csv
from msa.models import MsaEntry, MsaSearch
from tests.conftest import boltz_ready, wait_until
from tests.jobs.test_runner import lines, place_and_run
from tests.msa.colabfold_server import ColabFoldServer

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHAIN_A = "MKTAYIAKQRQISFVKSHFSRQ"
CHAIN_B = "GSHMSEQLTKCEVFRELKDLKGY"
FAST = {"recycling_steps": 0, "sampling_steps": 10}
MSA_ENGINES = {"boltz": {"ready": True}, "msa_server": {"ready": True}}


@pytest.fixture
def colabfold(settings):
    server = ColabFoldServer(api_key="lab-key")
    settings.PORTAL_MSA_SERVER_URL = server.url
    settings.PORTAL_MSA_SERVER_API_KEY = "lab-key"
    settings.PORTAL_MSA_SERVER_POLL = 0.05
    settings.PORTAL_MSA_SERVER_TIMEOUT = 20
    yield server
    server.stop()


@pytest.fixture
def node(boltz_cache, settings, make_node):
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    return make_node(runner=True, engines=MSA_ENGINES)


def predict(api, user, project, *chains, **params):
    document = {"sequences": [{"protein": {"id": c, "sequence": s}} for c, s in chains]}
    return api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, **FAST, **params}},
        format="json",
    )


def submitted(response) -> tuple[Job, Job | None]:
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    return job, job.children.first()


def artifact(job, name) -> bytes:
    return default_storage.open(job.artifacts.get(name=name).storage_key).read()


def run_stage(msa_job, prediction, enqueued):
    """Run the MSA job on its CPU slot (unless the runner of an earlier job on that slot, which
    goes on to the slot's next job, ran it already); the prediction then waits for a slot."""
    msa_job.refresh_from_db()
    if not msa_job.is_finished:
        place_and_run(msa_job, enqueued)
    prediction.refresh_from_db()
    return msa_job


def test_a_prediction_waits_holding_nothing_while_its_msa_is_searched_then_uses_it(
    node, colabfold, api, alice, project, enqueued
):
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A)))
    # No MSA of its own and a server configured: the server is the default source.
    assert prediction.params["msa"] == "server"
    assert prediction.state == State.PENDING and prediction.node_id is None
    assert (search.kind, search.state, search.params["source"]) == ("msa", State.QUEUED, "server")
    assert search.gpu_memory is None and search.needs == ["msa_server"]
    assert "MSAs of chain A" in prediction.progress_message
    assert prediction.gpu_memory > 4 * 2**30  # counted with the deepest MSA boltz reads

    run_stage(search, prediction, enqueued)
    assert search.state == State.SUCCEEDED, search.error
    assert search.gpu is None  # a CPU slot
    assert prediction.state == State.QUEUED
    said = lines(prediction)
    assert f"Chain A ({len(CHAIN_A)} aa): MSA from {colabfold.url}" in said
    assert any(line.startswith("MSA of MKTAYIAKQR… (22 aa): search at") for line in said)
    assert colabfold.searches == [{"mode": "env", "sequences": [CHAIN_A]}]

    place_and_run(prediction, enqueued)
    assert prediction.state == State.SUCCEEDED, prediction.error
    a3m = artifact(search, "msa-A.a3m").decode()
    assert a3m_rows(a3m)[0] == CHAIN_A
    # The searched MSA is the prediction's own artifact, named by the input it ran.
    assert artifact(prediction, "extra-msa-A.a3m").decode() == a3m
    archived = yaml.safe_load(artifact(prediction, "input.yaml"))
    assert archived["sequences"][0]["protein"]["msa"] == "extra-msa-A.a3m"
    # Its rows reach boltz's processed MSA (the insertion row differs only by its gap-free
    # letters, so every row is distinct).
    processed = np.load(io.BytesIO(artifact(prediction, f"msa_job-{prediction.pk}_0.npz")))
    assert len(processed["sequences"]) == len(a3m_rows(a3m))


def test_two_predictions_of_a_chain_cause_one_search_and_one_a_day_later_none(
    node, colabfold, api, alice, erin, project, enqueued
):
    first, first_search = submitted(predict(api, alice, project, ("A", CHAIN_A), seed=1))
    second, second_search = submitted(predict(api, erin, project, ("B", CHAIN_A), seed=2))
    run_stage(first_search, first, enqueued)
    run_stage(second_search, second, enqueued)
    # (The slot's runner may have gone on to predict them.)
    assert {first.state, second.state} <= {State.QUEUED, State.RUNNING, State.SUCCEEDED}
    assert len(colabfold.searches) == 1
    assert "MSA of MKTAYIAKQR… (22 aa): from the cache" in lines(second)

    MsaEntry.objects.update(last_used_at=timezone.now() - timedelta(days=1))
    third, third_search = submitted(predict(api, alice, project, ("C", CHAIN_A), seed=3))
    run_stage(third_search, third, enqueued)
    assert third_search.state == State.SUCCEEDED and len(colabfold.searches) == 1
    assert artifact(third_search, "msa-C.a3m") == artifact(first_search, "msa-A.a3m")


def test_a_complex_of_two_proteins_gets_paired_rows_boltz_predicts_with(
    node, colabfold, api, alice, project, enqueued
):
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A), ("B", CHAIN_B)))
    run_stage(search, prediction, enqueued)
    assert search.state == State.SUCCEEDED, search.error
    assert [s["mode"] for s in colabfold.searches] == ["env", "pairgreedy-env"]
    tables = {c: artifact(search, f"msa-{c}.csv").decode().splitlines() for c in "AB"}
    for chain, sequence in (("A", CHAIN_A), ("B", CHAIN_B)):
        table = tables[chain]
        assert table[0] == "key,sequence" and table[1] == f"0,{sequence}"
        keys = [row.split(",")[0] for row in table[1:]]
        # The paired rows (the query and 4 made-up species), then the unpaired without the query.
        assert keys[:5] == ["0", "1", "2", "3", "4"] and set(keys[5:]) == {"-1"}
        assert len(keys) == 5 + 9
    place_and_run(prediction, enqueued)
    assert prediction.state == State.SUCCEEDED, prediction.error
    processed = np.load(io.BytesIO(artifact(prediction, f"msa_job-{prediction.pk}_0.npz")))
    assert len(processed["sequences"]) == 14


def test_boltz_csv_keeps_boltzs_keys_and_leaves_out_all_gap_rows():
    paired = ">101\nMKTA\n>1\nMKSA\n>2\n----\n>3\nMRTA\n"
    unpaired = ">101\nMKTA\n>x\nMKTv\n"
    assert boltz_csv(paired, unpaired) == "key,sequence\n0,MKTA\n1,MKSA\n3,MRTA\n-1,MKTv\n"
    assert boltz_csv("", unpaired) == "key,sequence\n-1,MKTA\n-1,MKTv\n"


def test_a_server_that_is_down_fails_the_prediction_with_the_reason_and_caches_nothing(
    node, settings, api, alice, project, enqueued
):
    from tests.conftest import free_port

    settings.PORTAL_MSA_SERVER_URL = f"http://127.0.0.1:{free_port()}"
    settings.PORTAL_MSA_SERVER_POLL = 0.05
    settings.PORTAL_MSA_SERVER_TIMEOUT = 1
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A)))
    run_stage(search, prediction, enqueued)
    assert search.state == State.FAILED
    assert "gave no MSA within 1 s: the server cannot be reached" in search.error
    assert prediction.state == State.FAILED and prediction.node_id is None
    assert prediction.transitions.last().reason.startswith(
        f"MSAs of chain A (job {search.pk}) failed: The MSA server at"
    )
    assert not MsaEntry.objects.exists()


def test_the_msa_source_is_single_sequence_without_a_server_and_a_missing_source_is_a_400(
    node, settings, api, alice, project, enqueued
):
    settings.PORTAL_MSA_SERVER_URL = ""
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A)))
    assert prediction.params["msa"] == "single" and search is None
    assert prediction.state == State.QUEUED

    refused = predict(api, alice, project, ("A", CHAIN_A), msa="server", seed=4)
    assert refused.status_code == 400
    assert "no MSA server" in json.dumps(refused.json())
    refused = predict(api, alice, project, ("A", CHAIN_A), msa="local", seed=4)
    assert refused.status_code == 400
    assert "local MSA database (PORTAL_MSA_LOCAL_DB)" in json.dumps(refused.json())
    assert Job.objects.count() == 1

    place_and_run(prediction, enqueued)
    assert prediction.state == State.SUCCEEDED, prediction.error
    archived = yaml.safe_load(artifact(prediction, "input.yaml"))
    assert archived["sequences"][0]["protein"]["msa"] == "empty"


def test_cancelling_a_waiting_prediction_cancels_its_search(
    node, colabfold, api, alice, project, enqueued
):
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A)))
    job_cancel(job=prediction, by=alice)
    search.refresh_from_db()
    assert search.state == State.CANCELLED
    prediction.refresh_from_db()
    assert prediction.state == State.CANCELLED
    assert not colabfold.searches and not MsaSearch.objects.exists()


def test_a_local_search_on_a_node_with_the_database_feeds_the_prediction(
    boltz_cache, settings, make_node, api, alice, project, enqueued, tmp_path
):
    from tests.msa.test_local import QUERY, write_database

    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    settings.PORTAL_MSA_SERVER_URL = ""
    query = QUERY[:60]
    settings.PORTAL_MSA_LOCAL_DB = str(write_database(tmp_path / "mini.fasta", query=query))
    # Only a node that reports the database takes the search.
    make_node("plain", engines={"boltz": {"ready": True}})
    make_node("lab", runner=True, engines={"boltz": {"ready": True}, "msa_local": {"ready": True}})
    prediction, search = submitted(predict(api, alice, project, ("A", query), msa="local"))
    assert search.needs == ["msa_local"]
    run_stage(search, prediction, enqueued)
    assert search.state == State.SUCCEEDED, search.error
    assert search.node.name == "lab"
    assert "Chain A (60 aa): MSA from the local database mini.fasta" in lines(prediction)
    a3m = artifact(search, "msa-A.a3m").decode()
    assert len(a3m_rows(a3m)) > 5


def test_no_gpu_is_held_while_a_prediction_waits_for_its_msa_on_real_processes(
    boltz_cache, transactional_db, project, alice
):
    """A node (`runnode`) with one (made-up) GPU and one CPU slot: the MSA search runs on the
    CPU slot while the server holds the result, and a GPU job submitted meanwhile runs and
    ends on the GPU; the prediction takes the GPU once its MSA is there."""
    import threading

    from tests.conftest import Stack

    server = ColabFoldServer(api_key="lab-key")
    server.hold = threading.Event()
    pool = Stack(
        "orm",
        PORTAL_BOLTZ_CACHE=boltz_cache["cache"],
        PORTAL_BOLTZ_CHECKPOINT=boltz_cache["checkpoint"],
        PORTAL_BOLTZ_AFFINITY_CHECKPOINT=boltz_cache["affinity_checkpoint"],
        PORTAL_MSA_SERVER_URL=server.url,
        PORTAL_MSA_SERVER_API_KEY="lab-key",
        PORTAL_MSA_SERVER_POLL=0.1,
    )
    try:
        gpu = json.dumps([{"name": "made-up 80 GB", "memory_total": 80 * 2**30}])
        pool.add_nodes("gpu1", cpu_slots=1, PORTAL_FAKE_GPUS=gpu)
        wait_until(lambda: boltz_ready("gpu1"), 30, what="the node to report boltz ready")
        client = pool.client(alice)
        document = {"sequences": [{"protein": {"id": "A", "sequence": CHAIN_A}}]}
        submitted = client.submit(project, kind="predict", params={"input": document, **FAST})
        assert submitted["state"] == State.PENDING
        prediction = Job.objects.get(pk=submitted["id"])
        search = prediction.children.get()
        wait_until(
            lambda: Job.objects.get(pk=search.pk).state == State.RUNNING, 30, what="the search"
        )
        wait_until(lambda: server.searches, 30, what="the search to reach the server")
        # Meanwhile the GPU is free for other work: a job that needs GPU memory runs and ends.
        other = client.submit(project, kind="sleep", params={"seconds": 0.2, "gib": 1})["id"]
        wait_until(lambda: Job.objects.get(pk=other).is_finished, 60, what="the GPU job")
        other = Job.objects.get(pk=other)
        assert other.state == State.SUCCEEDED and other.gpu == 0
        search.refresh_from_db()
        assert (search.state, search.gpu) == (State.RUNNING, None)
        prediction.refresh_from_db()
        assert prediction.state == State.PENDING and prediction.node_id is None
        # Its log and progress follow the search: which chain, from where, how it stands.
        assert prediction.progress_message.startswith("MSA server: RUNNING (")
        assert f"MSA of MKTAYIAKQR… (22 aa): search at {server.url}" in lines(prediction)

        server.hold.set()
        wait_until(
            lambda: Job.objects.get(pk=prediction.pk).is_finished, 120, what="the prediction"
        )
        prediction.refresh_from_db()
        assert prediction.state == State.SUCCEEDED, prediction.error
        assert prediction.gpu == 0
        assert len(server.searches) == 1
        assert f"Chain A ({len(CHAIN_A)} aa): MSA from {server.url}" in lines(prediction)
    finally:
        pool.stop()
        server.stop()


def test_the_pages_say_where_msas_come_from_and_link_a_prediction_to_its_search(
    node, colabfold, client, alice, api, project, settings
):
    client.force_login(alice)
    page = client.get(f"/projects/{project.pk}/jobs/new/predict/").content.decode()
    assert "This portal's MSA server is configured" in page
    prediction, search = submitted(predict(api, alice, project, ("A", CHAIN_A)))
    page = client.get(f"/jobs/{prediction.pk}/").content.decode()
    assert f'href="/jobs/{search.pk}/">#{search.pk} MSAs of chain A</a>' in page
    page = client.get(f"/jobs/{search.pk}/").content.decode()
    assert (
        f'For <a href="/jobs/{prediction.pk}/">job #{prediction.pk} {prediction.name}</a>' in page
    )
    assert api(alice).get(f"/api/v1/jobs/{search.pk}/").json()["parent"] == prediction.pk

    settings.PORTAL_MSA_SERVER_URL = ""
    page = client.get(f"/projects/{project.pk}/jobs/new/predict/").content.decode()
    assert "No MSA server is configured" in page
