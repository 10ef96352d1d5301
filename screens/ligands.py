"""A screen's ligands from its upload: a CSV or TSV with a `smiles` column (and `name`, if it
has one), a SMILES file (`.smi`: a SMILES a line, then its name), or an SDF of molecules (their
poses, for a screen of poses). A row without a SMILES is a 400 naming the row; a SMILES RDKit
cannot read is named and left out."""

import csv
import io
from dataclasses import dataclass

from django.core.files.storage import default_storage

from portal.errors import PortalError

MAX_LIGANDS = 10_000
NAMED = 20  # left-out ligands named one by one; the rest counted


@dataclass
class Read:
    name: str
    smiles: str
    molblock: str = ""  # an SDF record's molecule with its coordinates


def invalid(message: str) -> PortalError:
    return PortalError(message, code="input_invalid")


def read_ligands(upload) -> tuple[list[Read], list[str]]:
    """The ligands of an upload, and what was left out (one line each)."""
    with default_storage.open(upload.storage_key, "rb") as f:
        data = f.read()
    if upload.kind == "sdf":
        found, left_out = _sdf(data, upload.name)
    elif upload.kind in ("csv", "tsv"):
        found, left_out = _table(data.decode("utf-8", "replace"), upload)
    elif upload.kind == "smi":
        found, left_out = _smi(data.decode("utf-8", "replace"))
    else:
        raise invalid(
            f"{upload.name}: ligands come as CSV, TSV (a `smiles` column), SMILES (.smi) or SDF."
        )
    if not found:
        raise invalid(f"{upload.name}: no ligand RDKit can read." + _said(left_out))
    if len(found) > MAX_LIGANDS:
        raise invalid(f"{upload.name}: {len(found)} ligands; a screen takes up to {MAX_LIGANDS}.")
    notes = left_out[:NAMED]
    if len(left_out) > NAMED:
        notes.append(f"… and {len(left_out) - NAMED} more left out")
    return found, notes


def _said(left_out: list[str]) -> str:
    return (" " + "; ".join(left_out[:3])) if left_out else ""


def _table(text: str, upload) -> tuple[list[Read], list[str]]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    rows = csv.reader(io.StringIO(text), delimiter="\t" if upload.kind == "tsv" else ",")
    header = [h.strip().lower() for h in next(rows, [])]
    if "smiles" not in header:
        raise invalid(
            f"{upload.name}: row 1 is the header and has no `smiles` column "
            f"(it has: {', '.join(header) or 'nothing'})."
        )
    column, named = header.index("smiles"), header.index("name") if "name" in header else None
    found, left_out = [], []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        smiles = row[column].strip() if column < len(row) else ""
        if not smiles:
            raise invalid(f"{upload.name}: row {number} has no SMILES.")
        name = row[named].strip() if named is not None and named < len(row) else ""
        name = name or f"ligand {len(found) + len(left_out) + 1}"
        if Chem.MolFromSmiles(smiles) is None:
            left_out.append(f"row {number} ({name}): RDKit cannot read the SMILES '{smiles}'")
            continue
        found.append(Read(name[:200], smiles))
    return found, left_out


def _smi(text: str) -> tuple[list[Read], list[str]]:
    """A `.smi` file: a SMILES a line, then optionally its name."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    found, left_out = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.strip().split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        smiles = parts[0]
        name = (
            parts[1].strip() if len(parts) > 1 else ""
        ) or f"ligand {len(found) + len(left_out) + 1}"
        if Chem.MolFromSmiles(smiles) is None:
            left_out.append(f"line {number} ({name}): RDKit cannot read the SMILES '{smiles}'")
            continue
        found.append(Read(name[:200], smiles))
    return found, left_out


def _sdf(data: bytes, label: str) -> tuple[list[Read], list[str]]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    found, left_out = [], []
    supplier = Chem.ForwardSDMolSupplier(io.BytesIO(data), removeHs=False)
    for number, mol in enumerate(supplier, start=1):
        if mol is None:
            left_out.append(f"molecule {number}: RDKit cannot read it")
            continue
        name = (
            mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
        ) or f"molecule {number}"
        found.append(
            Read(name[:200], Chem.MolToSmiles(Chem.RemoveHs(mol)), Chem.MolToMolBlock(mol))
        )
    return found, left_out
