"""A complex a scientist has, as the structure boltz's affinity pass reads: made from what
`boltz predict` itself predicted (the real CLI on the tiny model, tests/boltzkit.py), it holds
the atoms, residues, chains and bonds of boltz's own `pre_affinity_<id>.npz`."""

from pathlib import Path

import gemmi
import numpy as np
import pytest
import yaml

from predictions import complexes
from predictions.engine import prepare_input
from tests.boltzkit import boltz_reference

pytestmark = pytest.mark.slow

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQ"
ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
AFFINITY = ("--sampling_steps_affinity", "10", "--diffusion_samples_affinity", "1")


def cofold(cache, tmp_path, ligand: dict, name: str) -> tuple[dict, Path]:
    """boltz predict's complex of the protein and `ligand`, with affinity asked: its input and
    its predictions folder."""
    document = {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": PROTEIN, "msa": "empty"}},
            {"ligand": {"id": "B", **ligand}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    extra = ("--affinity_checkpoint", str(cache["affinity_checkpoint"]), *AFFINITY)
    return document, boltz_reference(cache, path, tmp_path / "cli", *extra, seed=2)


def prepared(cache, tmp_path, document: dict, name: str) -> Path:
    """boltz's own preparation of the document (as the engine's, in this process)."""
    work = tmp_path / "prepared"
    work.mkdir()
    data = work / f"{name}.yaml"
    data.write_text(yaml.safe_dump(document, sort_keys=False))
    prepare_input(str(data), str(work), str(cache["cache"]), str(work / "said.log"))
    return work / "processed"


def assert_same_structure(built, npz: Path):
    """The structure built holds boltz's own: every table equal, coordinates to the mmCIF's
    precision (3 decimals)."""
    own = np.load(npz, allow_pickle=True)
    for table in ("residues", "chains", "bonds", "interfaces", "ensemble", "mask"):
        assert np.array_equal(getattr(built, table), own[table]), table
    for field in ("name", "is_present", "bfactor", "plddt"):
        assert np.array_equal(built.atoms[field], own["atoms"][field]), field
    assert np.allclose(built.atoms["coords"], own["atoms"]["coords"], atol=6e-4)
    assert np.allclose(built.coords["coords"], own["coords"]["coords"], atol=6e-4)


def test_a_complex_with_a_ccd_ligand_is_the_structure_boltz_scores(boltz_cache, tmp_path):
    document, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")

    complex_ = complexes.read_complex(
        cli / "sez_model_0.cif", residue="SEZ", mols=boltz_cache["mols"]
    )

    assert complexes.document(complex_) == document
    processed = prepared(boltz_cache, tmp_path, document, "sez")
    built, missing = complexes.pose(complex_, processed, "sez")
    assert missing == 0
    assert_same_structure(built, cli / "pre_affinity_sez.npz")


def test_a_protein_and_an_sdf_pose_are_the_structure_boltz_scores(boltz_cache, tmp_path):
    from boltz.data.parse.schema import standardize
    from rdkit import Chem
    from rdkit.Chem import AllChem

    document, cli = cofold(boltz_cache, tmp_path, {"smiles": ASPIRIN}, "asp")
    # The complex split as a docking tool would give it: the protein alone as PDB, the ligand's
    # pose as SDF (its bonds from the SMILES, its coordinates from boltz's model by atom name).
    model = gemmi.read_structure(str(cli / "asp_model_0.cif"))
    read = {
        a.name: (a.pos.x, a.pos.y, a.pos.z)
        for ch in model[0]
        for r in ch
        if r.name.startswith("LIG")
        for a in r
    }
    del model[0]["B"]
    (tmp_path / "protein.pdb").write_text(model.make_pdb_string())
    mol = AllChem.AddHs(AllChem.MolFromSmiles(standardize(ASPIRIN)))
    names = [
        a.GetSymbol().upper() + str(rank + 1)
        for a, rank in zip(mol.GetAtoms(), AllChem.CanonicalRankAtoms(mol), strict=True)
    ]
    heavy = [i for i, a in enumerate(mol.GetAtoms()) if a.GetAtomicNum() > 1]
    mol = Chem.RemoveHs(mol)
    conformer = Chem.Conformer(mol.GetNumAtoms())
    for k, index in enumerate(heavy):
        conformer.SetAtomPosition(k, read[names[index]])
    conformer.Set3D(True)
    mol.AddConformer(conformer)
    (tmp_path / "pose.sdf").write_text(Chem.MolToMolBlock(mol) + "$$$$\n")

    complex_ = complexes.read_complex(tmp_path / "protein.pdb", ligand=tmp_path / "pose.sdf")

    assert complex_.notes == []
    got = complexes.document(complex_)
    assert standardize(got["sequences"][1]["ligand"]["smiles"]) == standardize(ASPIRIN)
    processed = prepared(boltz_cache, tmp_path, got, "asp")
    built, missing = complexes.pose(complex_, processed, "asp")
    assert missing == 0
    assert_same_structure(built, cli / "pre_affinity_asp.npz")


@pytest.mark.parametrize(
    "kwargs, said",
    [
        ({"residue": "ATP"}, "no residue named 'ATP'; its other residues: SEZ."),
        ({"residue": "SEZ", "chain": "C"}, "chain C has no residue named 'SEZ'."),
    ],
)
def test_a_complex_without_its_ligand_is_refused_naming_it(boltz_cache, tmp_path, kwargs, said):
    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    with pytest.raises(complexes.ComplexError, match=said):
        complexes.read_complex(cli / "sez_model_0.cif", mols=boltz_cache["mols"], **kwargs)
