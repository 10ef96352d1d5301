"""AlphaFold 3's own input (its JSON, dialect `alphafold3`) as an `af3` job's input, run as
written: checked here as AlphaFold 3 checks it (google-deepmind/alphafold3, docs/input.md), so
a mistake is a 400 at submission rather than a failed job; what the portal keeps track of (the
chains, which proteins bring their MSAs, the tokens) is read from it as a Boltz-like document
(`document`), and the JSON itself goes to AlphaFold 3 with only its name, its seeds and the
MSAs it left to the portal filled in (`for_run`).
"""

import re

from django.core.files.storage import default_storage

from portal.uploads.formats import FormatError, load_json
from predictions.inputs import invalid

VERSIONS = range(1, 5)
SERVER = "alphafoldserver"  # AlphaFold Server's dialect: a list of jobs, another schema
TOP = {"dialect", "version", "name", "modelSeeds", "sequences", "bondedAtomPairs", "userCCD"}
ENTITIES = {
    "protein": {"id", "sequence", "modifications", "unpairedMsa", "pairedMsa", "templates",
                "description"},
    "rna": {"id", "sequence", "modifications", "unpairedMsa", "description"},
    "dna": {"id", "sequence", "modifications", "description"},
    "ligand": {"id", "ccdCodes", "smiles", "description"},
}  # fmt: skip
# Fields naming files on the machine the JSON was written on: a node does not have them.
ON_THE_NODE = {
    "userCCDPath": "userCCD",
    "unpairedMsaPath": "unpairedMsa",
    "pairedMsaPath": "pairedMsa",
    "mmcifPath": "mmcif",
}
# What the portal's Boltz-like document says of a protein whose MSA the JSON holds.
GIVEN = "in the AlphaFold 3 JSON"
MAX_SEED = 2**32 - 1


def read(upload) -> dict:
    """The checked AlphaFold 3 input an upload holds; a 400 naming the file and the place."""
    with default_storage.open(upload.storage_key, "rb") as f:
        try:
            data = load_json(f.read())
        except FormatError as exc:
            raise invalid(f"{upload.name}: {exc}") from None
    return check(data, upload.name)


class Refused(Exception):
    """Where in the input (or '') and why AlphaFold 3 would not take it."""

    def __init__(self, where: str, why: str):
        super().__init__(f"{where}{': ' if where else ''}{why}")


def check(data, label: str) -> dict:
    """`data` if it is input AlphaFold 3 would take; else a 400 saying where and why."""
    try:
        _check_top(data)
        seen: set[str] = set()
        for number, item in enumerate(data["sequences"], start=1):
            _check_entity(f"entity {number} of sequences", item, seen)
    except Refused as refused:
        raise invalid(f"{label}: {refused}") from None
    return data


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_top(data) -> None:
    if isinstance(data, list) or (isinstance(data, dict) and data.get("dialect") == SERVER):
        raise Refused(
            "",
            f"this is AlphaFold Server's format (dialect {SERVER}); AlphaFold 3 run on its own "
            "takes its dialect alphafold3 (AlphaFold 3's docs/input.md).",
        )
    if not isinstance(data, dict):
        raise Refused("", "AlphaFold 3's input is a JSON object.")
    if data.get("dialect") != "alphafold3":
        raise Refused("dialect", "must be 'alphafold3' (AlphaFold 3's input JSON).")
    if not _is_int(data.get("version"), VERSIONS[0], VERSIONS[-1]):
        raise Refused(
            "version", f"{data.get('version')!r} is not one of AlphaFold 3's input versions 1 to 4."
        )
    for key in data:
        if key in ON_THE_NODE:
            raise Refused(key, _elsewhere(key))
        if key not in TOP:
            raise Refused(key, "AlphaFold 3's input has no such field.")
    if not isinstance(data.get("name", ""), str):
        raise Refused("name", "must be a string.")
    seeds = data.get("modelSeeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s, 0, MAX_SEED) for s in seeds):
        raise Refused("modelSeeds", f"must be a non-empty list of integers 0 to {MAX_SEED}.")
    if not isinstance(data.get("sequences"), list) or not data["sequences"]:
        raise Refused("sequences", "must be a non-empty list of entities.")
    if not isinstance(data.get("bondedAtomPairs") or [], list):
        raise Refused("bondedAtomPairs", "must be a list of atom pairs.")
    if not isinstance(data.get("userCCD") or "", str):
        raise Refused("userCCD", "must be mmCIF text.")


def _check_entity(where: str, item, seen: set[str]) -> None:
    if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ENTITIES:
        raise Refused(where, "must be one of protein, rna, dna or ligand.")
    kind, body = next(iter(item.items()))
    if not isinstance(body, dict):
        raise Refused(f"{where} ({kind})", "must be an object.")
    ids = body.get("id") if isinstance(body.get("id"), list) else [body.get("id")]
    bad = [i for i in ids if not (isinstance(i, str) and re.fullmatch("[A-Z]+", i))]
    if not ids or bad:
        raise Refused(
            f"{where} ({kind})",
            f"its id must be upper-case letters, or a list of them, not {bad[0] if bad else []!r}.",
        )
    where = f"{where} ({kind} {', '.join(ids)})"
    for chain in ids:
        if chain in seen:
            raise Refused(where, f"chain id {chain} is used twice.")
        seen.add(chain)
    for key in body:
        if key in ON_THE_NODE:
            raise Refused(where, f"{key} {_elsewhere(key)}")
        if key not in ENTITIES[kind]:
            raise Refused(where, f"a {kind} has no field {key}.")
    if kind == "ligand":
        _check_ligand(where, body)
        return
    sequence = body.get("sequence")
    if not isinstance(sequence, str) or not re.fullmatch("[A-Z]+", sequence):
        raise Refused(where, "its sequence must be upper-case letters, one per residue.")
    for key in ("unpairedMsa", "pairedMsa"):
        if not isinstance(body.get(key) or "", str):
            raise Refused(where, f"{key} must be A3M text (or null).")
        query = next(
            (line for line in (body.get(key) or "").splitlines() if line and line[0] != ">"), None
        )
        if query is not None and query.strip() != sequence:
            raise Refused(where, f"the first sequence of its {key} is not the chain's sequence.")
    if not isinstance(body.get("templates") or [], list):
        raise Refused(where, "templates must be a list (or null).")
    for template in body.get("templates") or []:
        if isinstance(template, dict) and "mmcifPath" in template:
            raise Refused(where, f"a template's mmcifPath {_elsewhere('mmcifPath')}")


def _check_ligand(where: str, body: dict) -> None:
    codes, smiles = body.get("ccdCodes"), body.get("smiles")
    if (codes is None) == (smiles is None):
        raise Refused(where, "give exactly one of ccdCodes or smiles.")
    if codes is not None and (
        not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c for c in codes)
    ):
        raise Refused(where, "ccdCodes must be a non-empty list of CCD codes.")
    if smiles is not None and (not isinstance(smiles, str) or not smiles):
        raise Refused(where, "smiles must be a SMILES string.")


def _elsewhere(key: str) -> str:
    return (
        "names a file on the machine the JSON was written on, which the node running "
        f"AlphaFold 3 does not have: put the file's content in {ON_THE_NODE[key]} instead."
    )


def _entities(data: dict):
    for item in data["sequences"]:
        kind, body = next(iter(item.items()))
        yield kind, body, body["id"] if isinstance(body["id"], list) else [body["id"]]


def brings_msa(body: dict) -> bool:
    return body.get("unpairedMsa") is not None


def document(data: dict) -> dict:
    """A Boltz-like document of the input, for what the portal reads of an input (its chains,
    the proteins whose MSA it must find, the page): a protein whose MSA the JSON holds names
    its MSA as GIVEN, or as `empty` where that MSA is empty (single sequence)."""
    sequences = []
    for kind, body, ids in _entities(data):
        entry = {"id": ids if len(ids) > 1 else ids[0]}
        if kind == "ligand":
            codes = body.get("ccdCodes")
            if codes:
                entry["ccd"] = codes if len(codes) > 1 else codes[0]
            else:
                entry["smiles"] = body["smiles"]
        else:
            entry["sequence"] = body["sequence"]
        if kind == "protein" and brings_msa(body):
            entry["msa"] = GIVEN if body["unpairedMsa"].strip() else "empty"
        sequences.append({kind: entry})
    return {"version": 1, "sequences": sequences}


def tokens(document_: dict, mols=None) -> int:
    """AlphaFold 3's tokens, roughly, for placement: a residue each, and a ligand's heavy atoms
    (a CCD code's as `mols` has it, else one)."""
    import pickle

    from rdkit import Chem

    count = 0
    for item in document_["sequences"]:
        kind, body = next(iter(item.items()))
        copies = len(body["id"]) if isinstance(body["id"], list) else 1
        if kind != "ligand":
            count += copies * len(body["sequence"])
        elif "smiles" in body:
            mol = Chem.MolFromSmiles(body["smiles"])
            count += copies * (mol.GetNumHeavyAtoms() if mol is not None else 1)
        else:
            codes = body["ccd"] if isinstance(body["ccd"], list) else [body["ccd"]]
            for code in codes:
                path = mols / f"{code}.pkl" if mols is not None else None
                if path is not None and path.exists():
                    with path.open("rb") as f:
                        count += copies * pickle.load(f).GetNumHeavyAtoms()  # noqa: S301
                else:
                    count += copies
    return count


def for_run(
    data: dict, name: str, seeds: list[int], searched: dict, data_pipeline: bool
) -> tuple[dict, dict]:
    """The JSON AlphaFold 3 runs: the scientist's, named `name` (its output folder) with
    `seeds`; without AlphaFold 3's data pipeline, each protein that brings no MSA given the
    portal's search's (`searched[first chain]`: unpaired, paired A3M) or none, and the MSA
    fields and templates AlphaFold 3 then needs set (empty) where the JSON left them out. With
    the pipeline, AlphaFold 3 searches what brings none. And the report `as_alphafold3`
    gives: the chain ids (AlphaFold 3's own here) and no warnings."""
    sequences = []
    for kind, body, ids in _entities(data):
        body = dict(body)
        if kind == "protein" and not data_pipeline:
            if not brings_msa(body):
                body["unpairedMsa"], body["pairedMsa"] = searched.get(ids[0], ("", ""))
            body.setdefault("pairedMsa", "")
            if body["pairedMsa"] is None:
                body["pairedMsa"] = ""
            if body.get("templates") is None:
                body["templates"] = []
        if kind == "rna" and not data_pipeline and body.get("unpairedMsa") is None:
            body["unpairedMsa"] = ""
        sequences.append({kind: body})
    chains = [chain for _, _, ids in _entities(data) for chain in ids]
    run = {**data, "name": name, "modelSeeds": seeds, "sequences": sequences}
    return run, {"chain_ids": {chain: chain for chain in chains}, "warnings": []}
