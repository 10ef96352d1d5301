"""Screens on real processes: the portal (Daphne), the scheduler and two nodes (`runnode`),
each a process of its own, predicting with the tiny model (tests/boltzkit.py)."""

import json
from collections import Counter

import pytest
from django.core.files.storage import default_storage

from jobs.models import Job, State
from screens.models import Ligand
from tests.browser.test_screen_page import SCREEN
from tests.conftest import boltz_ready, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TWELVE = "name,smiles\n" + "".join(
    f"{name},{smiles}\n"
    for name, smiles in [
        ("ethanol", "CCO"),
        ("phenol", "c1ccccc1O"),
        ("acetone", "CC(C)=O"),
        ("glycine", "NCC(=O)O"),
        ("benzene", "c1ccccc1"),
        ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
        ("broken", "C1CC(("),
        ("toluene", "Cc1ccccc1"),
        ("pyridine", "c1ccncc1"),
        ("urea", "NC(N)=O"),
        ("acetic acid", "CC(=O)O"),
        ("propanol", "CCCO"),
        ("methylamine", "CN"),
    ]
)


def kill_9_mid_screen(stack, pk: int, node: str) -> None:
    """Once some ligands are scored and one is running: kill -9 of the node and the
    scheduler, then both started again."""
    wait_until(
        lambda: (
            Ligand.objects.filter(screen_id=pk, scored_at__isnull=False).count() >= 3
            and Job.objects.filter(parent_id=pk, state=State.RUNNING).exists()
        ),
        240,
        every=0.1,
        what="the screen to be under way",
    )
    for process in (stack.nodes[node], stack.scheduler):
        process.kill()
    stack.scheduler.start()
    stack.nodes[node].start()


def assert_scored_once(job: Job, count: int) -> None:
    """Every ligand scored, once: one child each, the children on both nodes."""
    children = Counter(Job.objects.filter(parent=job).values_list("ligand__index", flat=True))
    assert len(children) == count and set(children.values()) == {1}
    assert len(set(Job.objects.filter(parent=job).values_list("node__name", flat=True))) == 2


def test_kill_9_of_a_node_and_the_scheduler_mid_screen_scores_every_ligand_once(
    boltz_stack, project, alice
):
    boltz_stack.add_nodes("node1", "node2", cpu_slots=1)
    for name in ("node1", "node2"):
        wait_until(lambda n=name: boltz_ready(n), 30, what=f"{name} to report boltz ready")
    client = boltz_stack.client(alice)
    ligands = client.session.post(
        client.url + "/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("ligands.csv", TWELVE)},
        timeout=30,
    ).json()
    screen = client.submit(project, kind="screen", params=SCREEN, inputs=[ligands["id"]])
    assert screen["warnings"][1:] == ["row 8 (broken): RDKit cannot read the SMILES 'C1CC(('"]
    assert screen["warnings"][0].startswith("The target is predicted without an MSA")
    pk = screen["id"]
    kill_9_mid_screen(boltz_stack, pk, "node1")
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, 300, every=0.5, what="the screen")

    job = Job.objects.get(pk=pk)
    assert job.state == State.SUCCEEDED, job.error
    assert_scored_once(job, 12)
    ranking = client.get(f"/api/v1/jobs/{pk}/ligands/").json()["results"]
    assert [r["rank"] for r in ranking] == list(range(1, 13))
    for row in ranking:
        child = Job.objects.get(pk=row["job"])
        stored = child.artifacts.get(name=f"affinity_job-{child.pk}.json").storage_key
        figures = json.loads(default_storage.open(stored).read())
        assert row["affinity_pred_value"] == figures["affinity_pred_value"]


def test_a_poses_screen_of_twelve_ranks_them_on_two_nodes_through_a_kill_9(
    boltz_stack, boltz_cache, project, alice, tmp_path
):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from tests.predictions.test_complexes import cofold

    boltz_stack.add_nodes("node1", "node2", cpu_slots=1)
    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    poses = ""
    for line in TWELVE.splitlines()[1:]:
        name, smiles = line.split(",")
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            continue
        mol = Chem.AddHs(mol)
        AllChem.EmbedMolecule(mol, randomSeed=7)
        mol.SetProp("_Name", name)
        poses += Chem.MolToMolBlock(mol) + "$$$$\n"
    for name in ("node1", "node2"):
        wait_until(lambda n=name: boltz_ready(n), 30, what=f"{name} to report boltz ready")
    client = boltz_stack.client(alice)
    inputs = [
        client.session.post(
            client.url + "/api/v1/uploads/",
            data={"project": project.pk},
            files={"file": (name, data)},
            timeout=30,
        ).json()["id"]
        for name, data in [
            ("target.cif", (cli / "sez_model_0.cif").read_bytes()),
            ("poses.sdf", poses),
        ]
    ]
    options = {k: v for k, v in SCREEN.items() if "affinity" in k or k == "seed"}
    pk = client.submit(project, kind="screen", params={"mode": "poses", **options}, inputs=inputs)[
        "id"
    ]
    kill_9_mid_screen(boltz_stack, pk, "node2")
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, 300, every=0.5, what="the screen")

    job = Job.objects.get(pk=pk)
    assert job.state == State.SUCCEEDED, job.error
    assert_scored_once(job, 12)
    assert set(Job.objects.filter(parent=job).values_list("kind", flat=True)) == {"affinity"}
    ranking = client.get(f"/api/v1/jobs/{pk}/ligands/").json()["results"]
    assert [r["rank"] for r in ranking] == list(range(1, 13))
    for row in ranking:
        child = Job.objects.get(pk=row["job"])
        stored = child.artifacts.get(name=f"affinity_job-{child.pk}.json").storage_key
        figures = json.loads(default_storage.open(stored).read())
        assert row["affinity_pred_value"] == figures["affinity_pred_value"]
