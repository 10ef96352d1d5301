"""Each binder type's candidate input (designs.kinds.candidate_input), in the form Boltz reads,
checked by the portal and predicted on the resident engine with the real boltz package on the
tiny random model (tests/boltzkit.py, whose `mols/` hold the linker SEZ and the glycosylated
asparagine GLYCO_RESIDUE, made with RDKit: the real molecules cannot be downloaded here)."""

import random

import gemmi
import pytest

from designs.kinds import BINDER, LINKER, LINKERS, candidate_input
from designs.search import random_candidate
from jobs.models import Job, State
from tests.boltzkit import GLYCO_RESIDUE
from tests.jobs.test_runner import place_and_run
from tests.predictions.test_predict import artifact

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TARGET = "MKTAYIAKQRQISFVKSHFSRQ"
PARAMS = {"linker": "SEZ", "glycan": GLYCO_RESIDUE, "target": TARGET, "constraints": []}
FAST = {"recycling_steps": 0, "sampling_steps": 5, "msa": "single", "seed": 1}
# The glucose on the glycosylated asparagine's ND2 (tests/boltzkit.py).
SUGAR = {"C1", "C2", "C3", "C4", "C5", "C6", "O2", "O3", "O4", "O5", "O6"}


@pytest.fixture
def boltz_node(boltz_cache, settings, make_node):
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    return make_node(runner=True, engines={"boltz": {"ready": True}})


def candidate(binder_type: str, seed: int = 1) -> tuple[str, dict]:
    genotype = random_candidate(random.Random(seed), binder_type, 8, 10)
    return genotype, candidate_input({**PARAMS, "binder_type": binder_type}, genotype, None)


def chain(document: dict, kind: str, chain_id: str) -> dict:
    return next(
        entity[kind]
        for entity in document["sequences"]
        if entity.get(kind, {}).get("id") == chain_id
    )


def predicted(api, user, project, enqueued, document) -> gemmi.Model:
    """The document predicted as a `predict` job through the API and the runner: its best
    model, read from the job's structure artifact."""
    response = api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "predict", "params": {"input": document, **FAST}},
        format="json",
    )
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    assert job.params["input"] == document  # as the portal stored it, nothing dropped
    cif = artifact(job, f"job-{job.pk}_model_0.cif").decode()
    return gemmi.make_structure_from_block(gemmi.cif.read_string(cif).sole_block())[0]


def test_a_cyclic_binder_is_closed_on_chain_b_and_predicts(
    boltz_node, api, alice, project, enqueued
):
    genotype, document = candidate("cyclic")
    binder = chain(document, "protein", BINDER)
    assert binder["cyclic"] is True
    assert binder["sequence"] == genotype
    assert "cyclic" not in chain(document, "protein", "A")

    model = predicted(api, alice, project, enqueued, document)
    assert gemmi.one_letter_code([r.name for r in model[BINDER]]) == genotype


def test_a_bicyclic_binder_bonds_its_three_cysteines_to_the_linker_and_predicts(
    boltz_node, api, alice, project, enqueued
):
    genotype, document = candidate("bicyclic")
    binder = chain(document, "protein", BINDER)
    assert binder["sequence"].count("C") == 3 and binder["sequence"].endswith("C")
    assert chain(document, "ligand", LINKER)["ccd"] == "SEZ"
    cysteines = [i + 1 for i, letter in enumerate(genotype) if letter == "C"]
    bonds = [c["bond"] for c in document["constraints"]]
    assert [b["atom1"] for b in bonds] == [[BINDER, i, "SG"] for i in cysteines]
    assert [b["atom2"] for b in bonds] == [[LINKER, 1, atom] for atom in ("CD", "C1", "C2")]
    assert LINKERS["SEZ"] == ("CD", "C1", "C2")

    model = predicted(api, alice, project, enqueued, document)
    assert gemmi.one_letter_code([r.name for r in model[BINDER]]) == genotype
    (linker,) = list(model[LINKER])
    assert linker.name == "SEZ"
    assert {"CD", "C1", "C2"} <= {atom.name for atom in linker}
    for position in cysteines:
        assert model[BINDER][str(position)][0].find_atom("SG", "*") is not None


def test_a_glycopeptide_carries_its_sugar_on_the_marked_residue_and_predicts(
    boltz_node, api, alice, project, enqueued
):
    genotype, document = candidate("glycopeptide")
    (position,) = [i + 1 for i, letter in enumerate(genotype) if letter.islower()]
    binder = chain(document, "protein", BINDER)
    assert binder["modifications"] == [{"position": position, "ccd": GLYCO_RESIDUE}]
    assert binder["sequence"] == genotype.upper()

    model = predicted(api, alice, project, enqueued, document)
    residues = list(model[BINDER])
    assert len(residues) == len(genotype)
    glycosylated = residues[position - 1]
    assert glycosylated.name == GLYCO_RESIDUE
    # The residue keeps its backbone and its sugar; only the leaving OXT is gone.
    names = {atom.name for atom in glycosylated}
    assert {"N", "CA", "C", "O", "ND2"} | SUGAR <= names
    assert "OXT" not in names
    others = [r.name for r in residues if r is not glycosylated]
    assert gemmi.one_letter_code(others) == genotype.replace(genotype[position - 1], "")
