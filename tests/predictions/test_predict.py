"""Boltz-2 predictions on the resident engine, with the real boltz package on the tiny random
model the tests build (tests/boltzkit.py: nothing downloaded, nothing faked): what the engine
writes is what `boltz predict` writes for the same input, seed, options and checkpoint."""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import gemmi
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, State
from tests.boltzkit import BROKEN_CIF, boltz_reference
from tests.conftest import boltz_ready
from tests.jobs.test_runner import lines, place_and_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROTEIN = (
    "version: 1\nsequences:\n  - protein: {id: A, sequence: MKTAYIAKQRQISFVKSHFSRQ, msa: empty}\n"
)
LIGAND = (
    "version: 1\nsequences:\n"
    "  - protein: {id: A, sequence: MKTAYIAKQRQISFVKSHFSRQ, msa: empty}\n"
    "  - ligand: {id: B, smiles: 'CC(=O)Oc1ccccc1C(=O)O'}\n"
    "constraints:\n  - pocket: {binder: B, contacts: [[A, 3], [A, 5]]}\n"
)
FAST = {"recycling_steps": 0, "sampling_steps": 10}
# Tests compared with boltz's own outputs (tests/boltzkit.py: boltz_reference) count their jobs
# from 1: a job's record name (`job-<id>`) is in its outputs, and so in the reference's key.
REFERENCE = pytest.mark.django_db(transaction=True, reset_sequences=True)


def upload(api, user, project, name, text):
    response = api(user).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile(name, text.encode())},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def submit(api, user, project, upload_id, **params):
    response = api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "inputs": [upload_id], "params": params},
        format="json",
    )
    return response


def artifact(job, name) -> bytes:
    return default_storage.open(job.artifacts.get(name=name).storage_key).read()


def engine(job) -> dict:
    """What the engine says of itself at each job: pid, loads, jobs, device."""
    line = next(line for line in lines(job) if line.startswith("Boltz-2 engine "))
    return dict(part.split("=") for part in line.split()[2:])


@REFERENCE
def test_predictions_on_the_engine_are_what_boltz_predict_writes_and_load_once(
    boltz_node, boltz_cache, api, alice, project, enqueued, tmp_path
):
    jobs = []
    # The third job's seed was the first's: the engine sets the random state it kept from the
    # first job's replay of its load, after another seed's job ran in between. Its ligand is
    # the engine's second SMILES: RDKit embeds it as a fresh `boltz predict` would.
    for name, text, seed in [
        ("prot.yaml", PROTEIN, 0),
        ("lig.yaml", LIGAND, 3),
        ("again.yaml", LIGAND + "# the same again\n", 0),
    ]:
        response = submit(
            api, alice, project, upload(api, alice, project, name, text), seed=seed, **FAST
        )
        assert response.status_code == 201, response.content
        job = Job.objects.get(pk=response.json()["id"])
        place_and_run(job, enqueued)
        assert job.state == State.SUCCEEDED, job.error
        jobs.append((job, seed))

    # One engine, loaded once, served all three, one after another (tests share engines: it
    # may have served others before).
    first, second, third = (engine(job) for job, _ in jobs)
    assert first["pid"] == second["pid"] == third["pid"]
    assert first["loads"] == second["loads"] == third["loads"] == "1"
    assert [int(e["jobs"]) - int(first["jobs"]) for e in (first, second, third)] == [0, 1, 2]

    for job, seed in jobs:
        record = f"job-{job.pk}"
        # The job's input as it ran: the document it stored, written as YAML.
        yaml = tmp_path / f"{record}.yaml"
        yaml.write_bytes(artifact(job, "input.yaml"))
        cli = boltz_reference(boltz_cache, yaml, tmp_path / record, seed=seed)
        for path in sorted(cli.iterdir()):
            assert artifact(job, path.name) == path.read_bytes(), path.name
        names = set(job.artifacts.values_list("name", flat=True))
        assert {"input.yaml", f"{record}_model_0.cif", f"confidence_{record}_model_0.json"} <= names
        progress = [e.data["message"] for e in job.events.filter(type="progress")]
        assert progress[:2] == ["preparing the input", "predicting the structure"]
        # The best sample's confidence is the job's metrics, chains by their names.
        best = json.loads((cli / f"confidence_{record}_model_0.json").read_text())
        for key in ("confidence_score", "ptm", "iptm", "complex_plddt"):
            assert job.metrics[key]["value"] == best[key]
        assert job.metrics["ptm_A"]["value"] == best["chains_ptm"]["0"]
        if "ligand" in job.params["input"]["sequences"][-1]:
            assert job.metrics["iptm_A_B"]["value"] == best["pair_chains_iptm"]["0"]["1"]
        # The archive's manifest says what it ran with, down to the weights' digest.
        archive = api(alice).get(f"/api/v1/jobs/{job.pk}/archive/")
        with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
            manifest = json.loads(zf.read("manifest.json"))
        assert (
            manifest["engine"]["checkpoint_sha256"]
            == hashlib.sha256(Path(boltz_cache["checkpoint"]).read_bytes()).hexdigest()
        )
        assert manifest["job"]["params"]["seed"] == seed


@pytest.mark.parametrize(
    "document, problem",
    [
        (
            {"sequences": [{"protein": {"id": "A", "sequence": "MKT1AY"}}]},
            "Entity 1 (protein A): '1' at position 4 is not a protein letter",
        ),
        (
            {
                "sequences": [
                    {"protein": {"id": "A", "sequence": "MKTAY"}},
                    {"ligand": {"id": "B", "smiles": "C1CC(("}},
                ]
            },
            "Entity 2 (ligand B): the SMILES 'C1CC((' does not parse.",
        ),
        (
            {
                "sequences": [
                    {"protein": {"id": "A", "sequence": "MKTAY"}},
                    {"ligand": {"id": "B", "smiles": "CCO"}},
                ],
                "constraints": [{"pocket": {"binder": "B", "contacts": [["C", 3]]}}],
            },
            "Constraint 1 (pocket) contact: chain C is not in the input.",
        ),
        (
            {
                "sequences": [{"protein": {"id": "A", "sequence": "MKTAY"}}],
                "properties": [{"affinity": {"binder": "A"}}],
            },
            "Affinity: chain A is a protein; the binder is a ligand.",
        ),
        ({"molecules": [{"protein": {"id": "A"}}]}, "Unknown section(s) molecules"),
        (
            {
                "sequences": [
                    {"protein": {"id": "A", "sequence": "MKTAY"}},
                    {"ligand": {"id": "B", "ccd": "ATP"}},
                ]
            },
            "Entity 2 (ligand B): CCD code ATP: this portal's molecules lack it",
        ),
    ],
)
def test_a_bad_input_is_a_400_naming_the_problem(
    boltz_node, api, alice, project, document, problem
):
    response = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "input_invalid"
    assert problem in response.json()["detail"]
    assert not Job.objects.exists()


def test_an_upload_that_is_not_boltzs_schema_is_a_400(boltz_node, api, alice, project):
    bad = upload(api, alice, project, "bad.yaml", "version: 1\nproteins: [MKV]\n")
    response = submit(api, alice, project, bad)
    assert response.status_code == 400
    assert "Unknown section(s) proteins" in response.json()["detail"]


def test_the_same_prediction_twice_is_one_job_though_its_seed_is_drawn_at_random(
    boltz_node, api, alice, project, enqueued
):
    document = {"sequences": [{"protein": {"id": "A", "sequence": "MKTAYIAK", "msa": "empty"}}]}

    def post(**body):
        return api(alice).post(
            "/api/v1/jobs/",
            {"project": project.pk, "kind": "predict", "params": {"input": document}, **body},
            format="json",
        )

    first = post()
    assert first.status_code == 201
    again = post()  # a second click on Submit: no second prediction
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["params"]["seed"] == first.json()["params"]["seed"]
    forced = post(force=True)
    assert forced.status_code == 201
    assert forced.json()["params"]["seed"] != first.json()["params"]["seed"]
    # A seed given is part of the work: another seed is other work, the same seed the same.
    seeded = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, "seed": 3}},
        format="json",
    )
    assert seeded.status_code == 201
    assert Job.objects.count() == 3


def test_an_input_the_nodes_molecules_cannot_build_fails_that_job_with_the_reason(
    boltz_node, boltz_cache, settings, api, alice, project, enqueued, tmp_path
):
    """The portal knows a CCD code the node does not (its molecules are older): the job fails
    saying so, and stores no structure."""
    portal_cache = tmp_path / "portal-cache"
    (portal_cache / "mols").mkdir(parents=True)
    for pickle in Path(boltz_cache["mols"]).iterdir():
        (portal_cache / "mols" / pickle.name).symlink_to(pickle)
    (portal_cache / "mols" / "XAL.pkl").symlink_to(Path(boltz_cache["mols"]) / "ALA.pkl")
    settings.PORTAL_BOLTZ_CACHE = str(portal_cache)
    document = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQR"}},
            {"ligand": {"id": "B", "ccd": "XAL"}},
        ]
    }
    response = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, **FAST}},
        format="json",
    )
    assert response.status_code == 201, response.content
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])  # the node's, without XAL
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)

    assert job.state == State.FAILED
    assert "boltz could not prepare the input" in job.transitions.last().reason
    assert "CCD component XAL not found" in job.error
    assert not [n for n in job.artifacts.values_list("name", flat=True) if n.endswith(".cif")]

    # The engine goes on serving: the next job on the slot succeeds without a reload.
    after = submit(api, alice, project, upload(api, alice, project, "p.yaml", PROTEIN), **FAST)
    after = Job.objects.get(pk=after.json()["id"])
    place_and_run(after, enqueued)
    assert after.state == State.SUCCEEDED, after.error
    assert engine(after)["pid"] == engine(job)["pid"] and engine(after)["loads"] == "1"
    assert int(engine(after)["jobs"]) == int(engine(job)["jobs"]) + 1


def test_a_job_cancelled_mid_prediction_ends_within_5_s_keeping_its_engine(
    boltz_node, api, alice, project, enqueued
):
    """A prediction stops between two diffusion steps: the engine stays loaded (same process,
    one load), the log says who cancelled and where it stopped, and the next job succeeds."""
    import time

    from jobs.services import job_cancel
    from tests.jobs.test_runner import _alive, in_thread, placed

    protein = upload(api, alice, project, "prot.yaml", PROTEIN)
    long = Job.objects.get(
        pk=submit(api, alice, project, protein, seed=1, sampling_steps=1000).json()["id"]
    )
    thread = in_thread(*placed(long, enqueued))
    for _ in range(600):
        if long.events.filter(type="progress", data__percent=10).exists():
            break
        time.sleep(0.05)
    first = engine(long)
    asked = time.monotonic()
    job_cancel(job=long, by=alice)
    thread.join(15)
    assert time.monotonic() - asked < 5
    long.refresh_from_db()
    assert long.state == State.CANCELLED
    assert _alive(int(first["pid"]))
    said = lines(long)
    assert "cancel requested by alice" in said
    assert any(
        line.startswith("stopped after structure: ")
        and line.endswith(", as asked; the engine stays loaded")
        for line in said
    ), said

    after = Job.objects.get(pk=submit(api, alice, project, protein, seed=2, **FAST).json()["id"])
    place_and_run(after, enqueued)
    assert after.state == State.SUCCEEDED, after.error
    assert engine(after)["pid"] == first["pid"] and engine(after)["loads"] == first["loads"]


def test_predictions_through_the_api_on_a_real_node_leave_every_artifact(
    boltz_stack, project, alice
):
    from tests.conftest import wait_until

    boltz_stack.add_nodes("gpu01")
    client = boltz_stack.client(alice)
    # The node's heartbeat says its weights are there: predictions may go to it.
    wait_until(lambda: boltz_ready("gpu01"), 30, what="the node to report boltz ready")
    ids = []
    for name, text in [("prot.yaml", PROTEIN), ("lig.yaml", LIGAND)]:
        response = client.session.post(
            f"{boltz_stack.url}/api/v1/uploads/",
            data={"project": project.pk},
            files={"file": (name, text.encode())},
        )
        assert response.status_code == 201, response.text
        job = client.submit(
            project,
            kind="predict",
            params={**FAST, "seed": 5, "diffusion_samples": 2},
            inputs=[response.json()["id"]],
        )
        ids.append(job["id"])
    wait_until(
        lambda: all(Job.objects.get(pk=pk).is_finished for pk in ids), 120, what="predictions"
    )
    for pk in ids:
        job = Job.objects.get(pk=pk)
        assert job.state == State.SUCCEEDED, job.error
        record = f"job-{pk}"
        names = set(job.artifacts.values_list("name", flat=True))
        for k in (0, 1):
            assert {
                f"{record}_model_{k}.cif",
                f"confidence_{record}_model_{k}.json",
                f"plddt_{record}_model_{k}.npz",
                f"pae_{record}_model_{k}.npz",
                f"pde_{record}_model_{k}.npz",
            } <= names
        assert "input.yaml" in names
        listed = client.get(f"/api/v1/jobs/{pk}/artifacts/").json()
        assert {a["name"] for a in listed} == names


def test_a_prediction_is_refused_while_no_node_has_the_weights(
    boltz_cache, settings, api, alice, project
):
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "predict",
            "params": {"input": {"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}]}},
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "boltz_unavailable"
    assert "runs `manage.py boltzweights` on a node" in response.json()["detail"]


def test_boltzweights_says_whether_this_machine_can_predict(boltz_cache, settings, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    out = StringIO()
    # boltz's own download finds everything there (nothing is fetched) and the check passes.
    call_command("boltzweights", stdout=out)
    assert f"Ready: boltz 2.2.1, checkpoint {boltz_cache['checkpoint']}" in out.getvalue()

    settings.PORTAL_BOLTZ_CACHE = str(tmp_path / "empty")
    settings.PORTAL_BOLTZ_CHECKPOINT = ""
    with pytest.raises(CommandError, match="Not ready: missing .*boltz2_conf.ckpt"):
        call_command("boltzweights", "--check", stdout=out)


def protein(length: int) -> dict:
    return {"sequences": [{"protein": {"id": "A", "sequence": "MKTAYIAKQR" * (length // 10)}}]}


def test_gpu_memory_is_estimated_from_the_tokens_and_decides_where_a_prediction_goes(
    boltz_cache, settings, make_node, api, alice, project, enqueued
):
    """Made-up GPUs (none exists here); nothing runs, placement is the subject."""
    from tests.jobs.conftest import fake_gpu

    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    ready = {"boltz": {"ready": True}}
    make_node("small", cpu_slots=0, gpus=[fake_gpu(memory=8 * 2**30)], engines=ready)
    make_node("large", cpu_slots=0, gpus=[fake_gpu(memory=24 * 2**30)], engines=ready)

    def predict(length):
        return api(alice).post(
            "/api/v1/jobs/",
            {"project": project.pk, "kind": "predict", "params": {"input": protein(length)}},
            format="json",
        )

    # 4.5 GiB + 1,000² tokens × 13 KiB + 1,000³ B = 17.8 GiB: only the large GPU takes it.
    placed = Job.objects.get(pk=predict(1000).json()["id"])
    assert placed.gpu_memory == 4.5 * 2**30 + 1000**2 * 13 * 2**10 + 1000**3
    assert placed.node.name == "large"
    # 2,000 tokens need 61.5 GiB: more than any GPU of the pool has.
    refused = predict(2000)
    assert refused.status_code == 400 and refused.json()["code"] == "job_too_big"
    assert "about 61.5 GiB" in refused.json()["detail"]
    assert "the largest GPU of the nodes that run it has 24.0 GiB" in refused.json()["detail"]


def test_a_predictions_input_comes_as_alphafold3_json(boltz_node, api, alice, project, charlie):
    document = {
        "sequences": [
            {
                "protein": {
                    "id": ["A", "B"],
                    "sequence": "MKTAYC",
                    "modifications": [{"position": 2, "ccd": "MLY"}],
                }
            },
            {"dna": {"id": "C", "sequence": "ACGT"}},
            {"ligand": {"id": "D", "smiles": "CCO"}},
        ],
        "constraints": [
            {"bond": {"atom1": ["A", 6, "SG"], "atom2": ["D", 1, "C1"]}},
            {"pocket": {"binder": "D", "contacts": [["A", 3]]}},
        ],
    }
    job = Job.objects.create(
        project=project,
        owner=alice,
        kind="predict",
        name="complex",
        params={"input": document, "seed": 42},
        fingerprint="x",
    )
    response = api(alice).get(f"/api/v1/jobs/{job.pk}/af3/")
    assert response.status_code == 200
    assert response.json() == {
        "name": f"complex job {job.pk}",
        "modelSeeds": [42],
        "sequences": [
            {
                "protein": {
                    "id": ["A", "B"],
                    "sequence": "MKTAYC",
                    "modifications": [{"ptmType": "MLY", "ptmPosition": 2}],
                    "unpairedMsa": "",
                    "pairedMsa": "",
                    "templates": [],
                }
            },
            {"dna": {"id": "C", "sequence": "ACGT", "modifications": []}},
            {"ligand": {"id": "D", "smiles": "CCO"}},
        ],
        "bondedAtomPairs": [[["A", 6, "SG"], ["D", 1, "C1"]]],
        "dialect": "alphafold3",
        "version": 2,
    }
    assert api(charlie).get(f"/api/v1/jobs/{job.pk}/af3/").status_code == 404
    report = api(alice).get(f"/api/v1/jobs/{job.pk}/af3/report/").json()
    assert report["chain_ids"] == {"A": "A", "B": "B", "C": "C", "D": "D"}
    assert report["warnings"] == [
        "Constraint 2 (pocket) is left out: AlphaFold 3's input has no pocket constraints."
    ]


def test_the_alphafold3_export_maps_chain_ids_warns_of_what_it_drops_and_carries_searched_msas(
    api, alice, project
):
    from django.core.files.base import ContentFile

    from jobs.models import Artifact

    document = {
        "sequences": [
            {"protein": {"id": "a1", "sequence": "MKTAYC", "cyclic": True}},
            {"protein": {"id": "B", "sequence": "MKV"}},
            {"ligand": {"id": "l", "ccd": "SAH"}},
        ],
        "constraints": [
            {"bond": {"atom1": ["a1", 6, "SG"], "atom2": ["l", 1, "C1"]}},
            {"pocket": {"binder": "l", "contacts": [["a1", 3]]}},
            {"contact": {"token1": ["a1", 1], "token2": ["B", 2], "max_distance": 6}},
        ],
        "properties": [{"affinity": {"binder": "l"}}],
    }
    job = Job.objects.create(
        project=project,
        owner=alice,
        kind="predict",
        name="cyclic",
        params={"input": document, "seed": 7, "msa": "server"},
        fingerprint="x",
    )
    # What its MSA search found: chain a1 and B paired (boltz's CSV), as msa/kinds.py writes.
    search = Job.objects.create(
        project=project, owner=alice, kind="msa", parent=job, state=State.SUCCEEDED
    )
    csv = {
        "a1": "key,sequence\n0,MKTAYC\n1,MKTAYD\n-1,MRTAYC\n",
        "B": "key,sequence\n0,MKV\n1,MRV\n",
    }
    for chain, text in csv.items():
        key = default_storage.save(f"test/msa-{chain}.csv", ContentFile(text.encode()))
        Artifact.objects.create(
            job=search, name=f"msa-{chain}.csv", storage_key=key, size=len(text), sha256="x"
        )

    converted = api(alice).get(f"/api/v1/jobs/{job.pk}/af3/").json()
    first, second, ligand = converted["sequences"]
    assert first["protein"]["id"] == "A" and second["protein"]["id"] == "B"
    assert ligand["ligand"] == {"id": "C", "ccdCodes": ["SAH"]}
    assert first["protein"]["unpairedMsa"] == ">0\nMKTAYC\n>1\nMRTAYC\n"
    assert first["protein"]["pairedMsa"] == ">0\nMKTAYC\n>1\nMKTAYD\n"
    assert second["protein"]["unpairedMsa"] == ">0\nMKV\n"
    assert converted["bondedAtomPairs"] == [[["A", 6, "SG"], ["C", 1, "C1"]]]
    assert converted["name"] == f"cyclic job {job.pk}"

    report = api(alice).get(f"/api/v1/jobs/{job.pk}/af3/report/").json()
    assert report["chain_ids"] == {"a1": "A", "B": "B", "l": "C"}
    assert [w.split(":")[0].split(" is ")[0] for w in report["warnings"]] == [
        "Entity 1 (protein a1)",
        "Constraint 2 (pocket)",
        "Constraint 3 (contact)",
        "Affinity",
        "Chain a1",  # is A and chain l is C …
    ]


def test_the_job_list_shows_a_predictions_confidence(client, alice, project):
    metrics = {"confidence_score": 0.8123, "iptm": 0.5, "complex_plddt": 0.9}
    Job.objects.create(
        project=project,
        owner=alice,
        kind="predict",
        name="complex",
        params={},
        fingerprint="x",
        state=State.SUCCEEDED,
        metrics={name: {"step": 0, "value": value} for name, value in metrics.items()},
    )
    client.force_login(alice)
    page = client.get("/jobs/").content.decode()
    assert "confidence 0.81 · ipTM 0.50 · pLDDT 0.90" in page


@REFERENCE
def test_affinity_on_the_engine_is_what_boltz_predict_writes(
    boltz_node, boltz_cache, api, alice, project, enqueued, tmp_path
):
    """The affinity model loads when a job first asks for it, after the structure model, as the
    CLI's second pass does; its figures match the CLI's and become the job's metrics."""
    document = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFSRQ"}},
            {"ligand": {"id": "B", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    options = {"sampling_steps_affinity": 10, "diffusion_samples_affinity": 1, "seed": 4}
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "predict",
            "params": {"input": document, **FAST, **options},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    assert "predicting the affinity" in [
        e.data["message"] for e in job.events.filter(type="progress")
    ]

    record = f"job-{job.pk}"
    yaml = tmp_path / f"{record}.yaml"
    yaml.write_bytes(artifact(job, "input.yaml"))
    cli = boltz_reference(
        boltz_cache,
        yaml,
        tmp_path / record,
        "--affinity_checkpoint",
        str(boltz_cache["affinity_checkpoint"]),
        "--sampling_steps_affinity",
        "10",
        "--diffusion_samples_affinity",
        "1",
        seed=4,
    )
    expected = (cli / f"affinity_{record}.json").read_bytes()
    assert artifact(job, f"affinity_{record}.json") == expected
    assert (
        job.metrics["affinity_probability_binary"]["value"]
        == (json.loads(expected)["affinity_probability_binary"])
    )
    provenance = json.loads(artifact(job, "provenance.json"))
    assert (
        provenance["affinity_checkpoint_sha256"]
        == hashlib.sha256(Path(boltz_cache["affinity_checkpoint"]).read_bytes()).hexdigest()
    )


A3M = (
    ">query\nMKTAYIAKQRQISFVKSHFSRQ\n"
    ">hom1 a close homologue\nMKTAYLAKQRQISFVKSHFSRE\n"
    ">hom2 with a deletion\nMKSAYIAKQRQ-SFVKSHFSRQ\n"
    ">hom3 with an insertion\nMKTAYIAKQRQISFVKSkkHFSRQ\n"
)


@REFERENCE
def test_an_uploaded_msa_and_template_reach_boltz_as_boltz_predict_takes_them(
    boltz_node, boltz_cache, api, alice, project, enqueued, tmp_path
):
    """A chain's MSA (an A3M upload) and a template (an mmCIF upload, here the structure of an
    earlier prediction) are named by id; the node fetches them, the engine predicts what
    `boltz predict` predicts from the job's archived input.yaml and the files beside it, and
    the uploads stay while the job does."""
    # Seeded, so that the template (its structure), and with it the reference, is the same each run.
    first = submit(
        api, alice, project, upload(api, alice, project, "p.yaml", PROTEIN), seed=1, **FAST
    )
    first = Job.objects.get(pk=first.json()["id"])
    place_and_run(first, enqueued)
    structure = artifact(first, f"job-{first.pk}_model_0.cif").decode()
    template = upload(api, alice, project, "earlier.cif", structure)
    msa = upload(api, alice, project, "homologues.a3m", A3M)
    document = {
        "sequences": [{"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFSRQ", "msa": msa}}],
        "templates": [{"cif": template, "chain_id": "A"}],
    }
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "predict",
            "params": {"input": document, "seed": 5, **FAST},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["inputs"] == [msa, template]
    job = Job.objects.get(pk=response.json()["id"])
    # Deeper MSAs need more memory: four rows on 22 tokens add 22 × 4 × (160 B + 1 KiB).
    assert job.gpu_memory - first.gpu_memory == 22 * 4 * (160 + 1024)
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error

    # The archived input names the files beside it, and boltz predict on them agrees.
    record = f"job-{job.pk}"
    archived = tmp_path / "archive"
    archived.mkdir()
    for name in ("homologues.a3m", "earlier.cif"):
        (archived / name).write_bytes(artifact(job, name))
    text = artifact(job, "input.yaml").decode()
    assert "msa: homologues.a3m" in text and "cif: earlier.cif" in text
    (archived / f"{record}.yaml").write_text(text)
    cli = boltz_reference(
        boltz_cache, archived / f"{record}.yaml", tmp_path / "cli", seed=5, cwd=archived
    )
    for path in sorted(cli.iterdir()):
        assert artifact(job, path.name) == path.read_bytes(), path.name
    # The MSA's rows reached boltz's processed MSA, and the template the model: without it
    # the same input and seed give another structure.
    rows = np.load(io.BytesIO(artifact(job, f"msa_{record}_0.npz")))["sequences"]
    assert len(rows) == 4
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / f"{record}.yaml").write_text(text.split("templates:")[0])
    plain = boltz_reference(
        boltz_cache, tmp_path / "plain" / f"{record}.yaml", tmp_path / "plain", seed=5, cwd=archived
    )
    assert (plain / f"{record}_model_0.cif").read_bytes() != artifact(job, f"{record}_model_0.cif")

    # AlphaFold 3 gets the chain's MSA as its unpaired MSA.
    af3 = api(alice).get(f"/api/v1/jobs/{job.pk}/af3/").json()
    assert af3["sequences"][0]["protein"]["unpairedMsa"] == A3M

    # The same structure as a PDB file is a template too.
    pdb = upload(
        api,
        alice,
        project,
        "earlier.pdb",
        gemmi.read_structure(str(cli / f"{record}_model_0.cif")).make_pdb_string(),
    )
    document["templates"] = [{"pdb": pdb, "chain_id": "A", "force": True, "threshold": 2.0}]
    response = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, **FAST}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["inputs"] == [msa, pdb]

    # The uploads are the job's inputs now: they stay while it does.
    response = api(alice).delete(f"/api/v1/uploads/{msa}/")
    assert response.status_code == 409


def test_a_bad_msa_or_template_is_a_400_naming_it(
    boltz_node, api, alice, project, make_user, tmp_path
):
    from portal.projects.services import project_create

    sequence = "MKTAYIAKQRQISFVKSHFSRQ"
    a3m = upload(api, alice, project, "good.a3m", A3M)
    dora = make_user("dora")
    elsewhere = project_create(name="Other lab", by=dora)
    foreign = upload(api, dora, elsewhere, "theirs.a3m", A3M)
    cases = [
        ("./msa.a3m", None, "Entity 1 (protein A): `msa` is `empty` (single sequence) or the id"),
        (foreign, None, f"Entity 1 (protein A): there is no upload {foreign} in this project."),
        (
            upload(api, alice, project, "seqs.fasta", f">a\n{sequence}\n"),
            None,
            "Entity 1 (protein A): 'seqs.fasta' is FASTA; `msa` takes A3M or CSV.",
        ),
        (
            upload(api, alice, project, "other.a3m", ">q\nMKTAYIAKQR\n"),
            None,
            "the first row of the MSA 'other.a3m' is not this chain's sequence",
        ),
        (
            upload(api, alice, project, "short.a3m", f">q\n{sequence}\n>h\nMKTAYIAKQR\n"),
            None,
            "row 2 of the MSA 'short.a3m' has 10 residues outside insertions; its chain has 22.",
        ),
        (
            upload(api, alice, project, "cols.csv", f"id,seq\n1,{sequence}\n"),
            None,
            "boltz cannot read the MSA 'cols.csv': Invalid CSV format",
        ),
        ("empty", {"cif": a3m}, "Template 1: 'good.a3m' is A3M; `cif` takes MMCIF."),
        ("empty", {"cif": "model.cif"}, "Template 1: `cif` is the id of an uploaded mmCIF file"),
        ("empty", {"pdb": a3m, "chain_id": "B"}, "Template 1: chain B is not a protein chain"),
        (
            "empty",
            {"cif": upload(api, alice, project, "bad.cif", BROKEN_CIF)},
            "Template 1: boltz cannot use 'bad.cif': its parser stopped with IndexError",
        ),
    ]
    for msa, template, problem in cases:
        document = {"sequences": [{"protein": {"id": "A", "sequence": sequence, "msa": msa}}]}
        if template:
            document["templates"] = [template]
        response = api(alice).post(
            "/api/v1/jobs/",
            {"project": project.pk, "kind": "predict", "params": {"input": document}},
            format="json",
        )
        assert response.status_code == 400, (problem, response.content)
        assert response.json()["code"] == "input_invalid"
        assert problem in response.json()["detail"], response.json()["detail"]
    assert not Job.objects.exists()


def test_a_local_search_gives_an_msa_the_engine_reads(
    boltz_node, api, alice, project, enqueued, tmp_path
):
    """jackhmmer's A3M against a small database (tests/msa/test_local.py) is one boltz
    predicts with: its rows reach boltz's processed MSA."""
    from msa.local import LocalDatabase
    from tests.msa.test_local import QUERY, write_database

    query = QUERY[:60]
    database = LocalDatabase(write_database(tmp_path / "mini.fasta", query=query))
    (a3m,) = database.search([query], say=print)
    distinct = {row.replace("-", "").upper() for row in a3m.splitlines()[1::2]}
    assert len(distinct) > 5
    msa = upload(api, alice, project, "jackhmmer.a3m", a3m)
    document = {"sequences": [{"protein": {"id": "A", "sequence": query, "msa": msa}}]}
    response = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, **FAST}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    processed = np.load(io.BytesIO(artifact(job, f"msa_job-{job.pk}_0.npz")))
    assert len(processed["sequences"]) == len(distinct)
