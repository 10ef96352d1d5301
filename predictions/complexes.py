"""A protein-ligand complex a scientist already has, as the structure boltz's affinity pass reads.

`boltz predict` scores affinity on `pre_affinity_<id>.npz`: the structure of the record its
preparation made (`processed/structures/<id>.npz`), with the predicted coordinates in it, every
atom and residue present and no interfaces (boltz.data.write.writer.BoltzWriter). Here the same
structure is made from a complex file:

1. `read_complex` reads the file (gemmi): the protein chains (their sequences, and each
   residue's atoms by name) and the ligand, either a residue of the file (`residue`, and `chain`
   where several match) or a separate SDF, MOL or MOL2 file (RDKit).
2. `document` is the Boltz input of that complex: each protein chain with `msa: empty`, the
   ligand by its CCD code where the portal's molecules have the residue's name (its atoms then
   go by their CCD names), else by SMILES (the bonds the ligand file gives, or that RDKit reads
   from the residue's 3D geometry), and the affinity asked for the ligand.
3. boltz's own preparation turns the document into a record and its structure, as for a
   prediction (predictions/engine.py).
4. `pose` puts the file's coordinates into that structure: a protein atom by its chain, its
   residue's place in the chain and its name; the ligand's atoms by name (CCD) or by matching
   the ligand's bonds to the molecule boltz made of the SMILES.
"""

from dataclasses import dataclass, field
from pathlib import Path

# boltz's limit on the affinity ligand (boltz.data.parse.schema).
MAX_LIGAND_ATOMS = 128
LIGAND_SUFFIXES = {".sdf": "sdf", ".sd": "sdf", ".mol": "mol", ".mol2": "mol2"}


class ComplexError(ValueError):
    """What is wrong with a complex, said to the person who gave it."""


@dataclass
class Chain:
    name: str
    sequence: str
    residues: list[dict[str, tuple[float, float, float]]]  # per residue, atom name -> x, y, z


@dataclass
class Complex:
    proteins: list[Chain]
    ligand_chain: str
    ccd: str | None = None  # the ligand's CCD code, when the molecules have its residue name
    atoms: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # CCD: by name
    mol: object = None  # else: an RDKit molecule, heavy atoms, one conformer with the pose
    notes: list[str] = field(default_factory=list)  # what was made up (hydrogens, 3D)

    @property
    def smiles(self) -> str:
        from rdkit import Chem

        return Chem.MolToSmiles(self.mol)


def _one_letter(name: str) -> str | None:
    import gemmi

    found = gemmi.find_tabulated_residue(name)
    if found is None or not found.is_amino_acid():
        return None
    letter = found.one_letter_code.upper()
    return letter if letter.isalpha() and letter != "X" else None


def read_complex(
    structure: Path,
    *,
    ligand: Path | None = None,
    residue: str | None = None,
    chain: str | None = None,
    mols: Path | None = None,
    label: str = "",
) -> Complex:
    """The complex in `structure` (PDB or mmCIF), its ligand the residue named `residue` (in
    `chain` where several chains have one) or the molecule in `ligand` (SDF, MOL, MOL2).
    `mols`: the portal's molecules (`<CODE>.pkl`), whose codes go in as CCD ligands.
    `label`: the file's name as its owner knows it, for messages."""
    import gemmi

    label = label or structure.name
    try:
        read = gemmi.read_structure(str(structure))
    except Exception as exc:  # gemmi says what it could not read
        raise ComplexError(f"{label}: not a structure gemmi can read: {exc}") from None
    if len(read) == 0:
        raise ComplexError(f"{label}: no model in the file.")
    read.remove_hydrogens()
    model = read[0]
    proteins, found = [], []
    for each in model:
        polymer = [r for r in each if _one_letter(r.name) is not None and r.name != residue]
        if polymer:
            proteins.append(
                Chain(
                    each.name,
                    "".join(_one_letter(r.name) for r in polymer),
                    [{a.name: (a.pos.x, a.pos.y, a.pos.z) for a in r} for r in polymer],
                )
            )
        if residue is not None:
            found += [(each.name, r) for r in each if r.name == residue]
    if not proteins:
        raise ComplexError(f"{label}: no protein chain in the file.")
    if ligand is None:
        if not found:
            names = sorted({r.name for ch in model for r in ch if _one_letter(r.name) is None})
            raise ComplexError(
                f"{label}: no residue named '{residue}'"
                + (f"; its other residues: {', '.join(names)}." if names else ".")
            )
        if chain is not None:
            found = [(c, r) for c, r in found if c == chain]
            if not found:
                raise ComplexError(f"{label}: chain {chain} has no residue named '{residue}'.")
        if len(found) > 1:
            where = ", ".join(f"chain {c} residue {r.seqid.num}" for c, r in found)
            raise ComplexError(
                f"{label}: '{residue}' is in {len(found)} places ({where}); say which with "
                "`ligand_chain`."
            )
        home, ligand_residue = found[0]
    taken = {p.name for p in proteins}
    free = (c for c in (*"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "L1", "L2") if c not in taken)
    if ligand is not None:
        result = Complex(proteins, next(free))
        result.mol = _ligand_file(ligand, result.notes)
    else:
        result = Complex(proteins, home if home not in taken else next(free))
        atoms = {a.name: (a.pos.x, a.pos.y, a.pos.z) for a in ligand_residue}
        if not atoms:
            raise ComplexError(f"{label}: residue '{residue}' has no atoms.")
        if mols is not None and (Path(mols) / f"{residue}.pkl").exists():
            result.ccd, result.atoms = residue, atoms
        else:
            result.mol = _from_geometry(ligand_residue, f"{label}: residue '{residue}'")
    heavy = len(result.atoms) if result.ccd else result.mol.GetNumAtoms()
    if heavy > MAX_LIGAND_ATOMS:
        raise ComplexError(
            f"The ligand has {heavy} heavy atoms; boltz's affinity model takes at most "
            f"{MAX_LIGAND_ATOMS}."
        )
    return result


def _ligand_file(path: Path, notes: list[str]):
    """The molecule of an SDF, MOL or MOL2 file, heavy atoms, with its 3D pose (made by RDKit,
    and said, where the file has none)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    kind = LIGAND_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ComplexError(f"{path.name}: a ligand is an SDF, MOL or MOL2 file.")
    try:
        if kind == "mol2":
            mol = Chem.MolFromMol2File(str(path), removeHs=False)
        else:
            mol = next(iter(Chem.SDMolSupplier(str(path), removeHs=False)), None)
    except Exception:  # RDKit's own parse errors: the file is not what it says
        mol = None
    if mol is None:
        raise ComplexError(f"{path.name}: RDKit cannot read a molecule from it.")
    three_d = mol.GetNumConformers() and mol.GetConformer().Is3D()
    if not three_d:
        mol = Chem.AddHs(mol)
        if AllChem.EmbedMolecule(mol, randomSeed=0) != 0:
            raise ComplexError(f"{path.name}: it has no 3D coordinates, and RDKit cannot make any.")
        notes.append(f"{path.name} has no 3D coordinates: RDKit made a conformer (not a pose).")
    return Chem.RemoveHs(mol)


def _from_geometry(residue, label: str):
    """A ligand residue's molecule, its bonds read from its 3D geometry (RDKit)."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    if all(abs(a.pos.z) < 1e-6 for a in residue):
        raise ComplexError(f"{label}: it has no 3D coordinates.")
    lines = [str(len(residue)), residue.name]
    lines += [f"{a.element.name} {a.pos.x:.4f} {a.pos.y:.4f} {a.pos.z:.4f}" for a in residue]
    mol = Chem.MolFromXYZBlock("\n".join(lines) + "\n")
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=0)
        Chem.SanitizeMol(mol)
    except Exception:
        raise ComplexError(
            f"{label}: RDKit cannot tell its bonds from its 3D coordinates; give the ligand as an "
            "SDF, MOL or MOL2 file beside the protein instead."
        ) from None
    Chem.AssignStereochemistryFrom3D(mol)
    return Chem.RemoveHs(mol)


def document(complex_: Complex) -> dict:
    """The Boltz input of the complex: its proteins (no MSA), its ligand, affinity for it."""
    sequences = [
        {"protein": {"id": chain.name, "sequence": chain.sequence, "msa": "empty"}}
        for chain in complex_.proteins
    ]
    ligand = {"ccd": complex_.ccd} if complex_.ccd else {"smiles": complex_.smiles}
    sequences.append({"ligand": {"id": complex_.ligand_chain, **ligand}})
    return {
        "version": 1,
        "sequences": sequences,
        "properties": [{"affinity": {"binder": complex_.ligand_chain}}],
    }


def pose(complex_: Complex, processed: Path, record_id: str):
    """The record's structure as boltz prepared it, with the complex's coordinates: what
    boltz's writer makes of a prediction for the affinity pass (`pre_affinity_<id>.npz`); and
    how many of its atoms the file lacks (left at the origin)."""
    import pickle
    from dataclasses import replace

    import numpy as np
    from boltz.data.types import Coords, Interface, StructureV2

    structure = StructureV2.load(processed / "structures" / f"{record_id}.npz")
    structure = structure.remove_invalid_chains()
    atoms, residues = structure.atoms.copy(), structure.residues.copy()
    coords = np.zeros((len(atoms), 3), dtype=np.float32)
    present = np.zeros(len(atoms), dtype=bool)
    by_chain = {chain.name: chain for chain in complex_.proteins}
    ligand = None
    if complex_.mol is not None:
        with open(processed / "mols" / f"{record_id}.pkl", "rb") as f:
            ligand = _matched(next(iter(pickle.load(f).values())), complex_.mol)  # noqa: S301
    for chain in structure.chains:
        first, count = chain["res_idx"], chain["res_num"]
        for place, res in enumerate(residues[first : first + count]):
            span = range(res["atom_idx"], res["atom_idx"] + res["atom_num"])
            if chain["name"] == complex_.ligand_chain and ligand is not None:
                for k, index in enumerate(span):
                    coords[index], present[index] = ligand[k], True
                continue
            known = (
                complex_.atoms
                if chain["name"] == complex_.ligand_chain
                else by_chain[str(chain["name"])].residues[place]
            )
            for index in span:
                xyz = known.get(str(atoms[index]["name"]))
                if xyz is not None:
                    coords[index], present[index] = xyz, True
    atoms["coords"] = coords
    # As boltz's writer: every atom and residue present (a missing atom stays at the origin).
    atoms["is_present"] = True
    residues["is_present"] = True
    return replace(
        structure,
        atoms=atoms,
        residues=residues,
        interfaces=np.array([], dtype=Interface),
        coords=np.array([(xyz,) for xyz in coords], dtype=Coords),
    ), int((~present).sum())


def _matched(prepared, given):
    """The coordinates of `given` (a pose) in the atom order of `prepared` (the molecule boltz
    made of its SMILES, heavy atoms): its atoms matched by the bonds (the first match, so an
    already ordered pose keeps its order)."""
    import numpy as np
    from rdkit import Chem

    matches = prepared.GetSubstructMatches(given, uniquify=False, useChirality=False)
    if not matches:
        raise ComplexError(
            f"The ligand's atoms do not match the molecule boltz makes of its SMILES "
            f"({Chem.MolToSmiles(given)})."
        )
    match = min(matches)
    positions = given.GetConformer().GetPositions()
    ordered = np.zeros((prepared.GetNumAtoms(), 3), dtype=np.float32)
    for given_index, prepared_index in enumerate(match):
        ordered[prepared_index] = positions[given_index]
    return ordered
