"""Virtual screens on the tiny model (tests/boltzkit.py): a parent job that holds no slot, each
ligand a child job (`predict` with affinity, or `affinity` on a pose), moved on by the
scheduler's step (`advance`), in this process."""

import csv
import io
import json
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from jobs.models import Job, State
from screens.screening import advance
from tests.designs.test_campaigns import run_queued
from tests.predictions.test_complexes import cofold

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TARGET = "MKTAYIAKQRQISFVKSHFSRQ"
FAST = {
    "recycling_steps": 0,
    "sampling_steps": 5,
    "sampling_steps_affinity": 5,
    "diffusion_samples_affinity": 1,
    "seed": 3,
}
LIGANDS = (
    "name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\nethanol,CCO\nbroken,C1CC((\nphenol,c1ccccc1O\n"
)


@pytest.fixture
def node(boltz_cache, settings, make_node):  # noqa: F811
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    return make_node(runner=True, cpu_slots=1, engines={"boltz": {"ready": True}})


def upload(api, user, project, name, data) -> int:
    response = api(user).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile(name, data)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def screen(api, user, project, inputs, **params):
    return api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "screen", "inputs": inputs, "params": params},
        format="json",
    )


def to_the_end(job, enqueued):
    for _ in range(20):
        advance(job.pk)
        job.refresh_from_db()
        if job.is_finished:
            return
        run_queued(enqueued)
    raise AssertionError(f"the screen did not end: {job.state} {job.progress_message}")


def artifact(job, name) -> bytes:
    return default_storage.open(job.artifacts.get(name=name).storage_key).read()


def test_a_cofold_screen_ranks_its_ligands_by_their_predictions_affinity(
    node, api, alice, project, enqueued
):
    ligands = upload(api, alice, project, "ligands.csv", LIGANDS.encode())

    response = screen(
        api, alice, project, [ligands], mode="cofold", target=TARGET, msa="single", **FAST
    )

    assert response.status_code == 201, response.content
    assert response.json()["warnings"] == [
        "The target is predicted without an MSA (single sequence), with every ligand: Boltz-2 "
        "is usually less accurate so. The MSA source server or local searches one, once for "
        "all ligands.",
        "row 4 (broken): RDKit cannot read the SMILES 'C1CC(('",
    ]
    job = Job.objects.get(pk=response.json()["id"])
    to_the_end(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error

    ranking = api(alice).get(f"/api/v1/jobs/{job.pk}/ligands/").json()["results"]
    assert [r["name"] for r in ranking] != [] and {r["name"] for r in ranking} == {
        "aspirin",
        "ethanol",
        "phenol",
    }
    values = [r["affinity_pred_value"] for r in ranking]
    assert values == sorted(values) and [r["rank"] for r in ranking] == [1, 2, 3]
    # The best is the screen's figure, as the jobs list shows it.
    best = Job.objects.get(pk=job.pk).metrics["best_affinity_pred_value"]
    assert best == {"step": 3, "value": values[0]}
    for row in ranking:
        child = Job.objects.get(pk=row["job"])
        assert child.kind == "predict" and child.parent_id == job.pk
        figures = json.loads(artifact(child, f"affinity_job-{child.pk}.json"))
        assert row["affinity_pred_value"] == figures["affinity_pred_value"]
        assert row["affinity_probability_binary"] == figures["affinity_probability_binary"]
        assert row["iptm"] == child.metrics["iptm"]["value"]
    table = list(csv.DictReader(io.StringIO(artifact(job, "ligands.csv").decode())))
    assert [t["name"] for t in table] == [r["name"] for r in ranking]
    assert json.loads(artifact(job, "screen.json"))["scored"] == 3
    # Its archive says what its ligands' predictions ran with, and where.
    archive = api(alice).get(f"/api/v1/jobs/{job.pk}/archive/")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    first = json.loads(artifact(Job.objects.get(pk=ranking[0]["job"]), "provenance.json"))
    assert manifest["engine"] == [{k: v for k, v in first.items() if k not in ("seed", "options")}]
    assert manifest["engine"][0]["boltz_version"] and manifest["children_ran_on"] == {"n1": 3}
    assert f"rank-01_{ranking[0]['name']}.cif" in set(job.artifacts.values_list("name", flat=True))
    # Its page lists its ligands' jobs as its own, not as jobs it waits for.
    client = Client()
    client.force_login(alice)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "Its jobs: " in page and "Runs after" not in page


def test_a_poses_screen_scores_each_pose_with_the_affinity_model(
    node, boltz_cache, api, alice, project, enqueued, tmp_path
):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    structure = upload(api, alice, project, "target.cif", (cli / "sez_model_0.cif").read_bytes())
    poses = ""
    for name, smiles in [("ethanol", "CCO"), ("phenol", "c1ccccc1O"), ("acetone", "CC(C)=O")]:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=7)
        mol.SetProp("_Name", name)
        poses += Chem.MolToMolBlock(mol) + "$$$$\n"
    sdf = upload(api, alice, project, "poses.sdf", poses.encode())

    response = screen(
        api,
        alice,
        project,
        [structure, sdf],
        mode="poses",
        **{k: v for k, v in FAST.items() if k not in ("recycling_steps", "sampling_steps")},
    )

    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    to_the_end(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    ranking = api(alice).get(f"/api/v1/jobs/{job.pk}/ligands/").json()["results"]
    assert {r["name"] for r in ranking} == {"ethanol", "phenol", "acetone"}
    for row in ranking:
        child = Job.objects.get(pk=row["job"])
        assert child.kind == "affinity"
        figures = json.loads(artifact(child, f"affinity_job-{child.pk}.json"))
        assert row["affinity_pred_value"] == figures["affinity_pred_value"]


@pytest.mark.parametrize(
    "name, data, said",
    [
        ("ligands.csv", b"id,structure\n1,CCO\n", "row 1 is the header and has no `smiles` column"),
        ("ligands.csv", b"name,smiles\na,CCO\nb,\n", "ligands.csv: row 3 has no SMILES."),
        ("ligands.csv", b"name,smiles\na,C1CC((\n", "no ligand RDKit can read"),
    ],
)
def test_a_ligand_file_the_screen_cannot_use_is_a_400_naming_the_row(
    node, api, alice, project, name, data, said
):
    ligands = upload(api, alice, project, name, data)
    response = screen(api, alice, project, [ligands], mode="cofold", target=TARGET, **FAST)
    assert response.status_code == 400, response.content
    assert said in json.dumps(response.json())


def test_a_smiles_file_gives_a_screen_its_ligands_and_names_the_unreadable(
    node, api, alice, project
):
    ligands = upload(
        api, alice, project, "library.smi", b"# a library\nCCO ethanol\nC1CC(( broken\nc1ccccc1O\n"
    )
    response = screen(api, alice, project, [ligands], mode="cofold", target=TARGET, **FAST)
    assert response.status_code == 201, response.content
    assert response.json()["warnings"][1:] == [
        "line 3 (broken): RDKit cannot read the SMILES 'C1CC(('"
    ]
    assert Job.objects.get(pk=response.json()["id"]).params["ligands"] == 2
