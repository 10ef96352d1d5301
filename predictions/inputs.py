"""A Boltz-2 input (boltz 2.2.1's YAML schema, version 1) as the portal takes it: from a YAML
or FASTA upload, or the same document as JSON; checked entity by entity before boltz's own
parser sees it, so a mistake is named (which entity, which constraint, what is wrong) rather
than surfacing as a bare KeyError from deep inside boltz.

The document a job runs is the normalised one, stored with the job: a protein chain's MSA is
`empty` (single sequence), an upload's id, or absent; an absent one comes from where the job's
`msa` parameter says (a search, or single sequence), filled in when the engine writes the YAML
for boltz. Files are never named by path: where boltz takes a path (a
protein's `msa`, a template's `cif` or `pdb`) the portal takes the id of an upload of the job's
project (an A3M or boltz CSV; an mmCIF or PDB); the node fetches it and boltz reads it from
there (predictions/kinds.py).
"""

import math
import re
from typing import NamedTuple

from portal.errors import PortalError

SECTIONS = {"version", "sequences", "constraints", "templates", "properties"}
POLYMERS = ("protein", "dna", "rna")
CHAIN_ID = re.compile(r"^[A-Za-z0-9]{1,4}$")
MAX_ENTITIES = 64
MAX_RESIDUES = 10_000


def invalid(message: str) -> PortalError:
    return PortalError(message, code="input_invalid")


def _letters(kind: str) -> set[str]:
    from boltz.data import const

    table = {
        "protein": const.prot_letter_to_token,
        "dna": const.dna_letter_to_token,
        "rna": const.rna_letter_to_token,
    }[kind]
    return {letter for letter in table if letter.isalpha()}


ENTITY_TYPES = (*POLYMERS, "smiles", "ccd")
CHAIN_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def fasta_records(text: str) -> list[tuple[str, str]]:
    """Each record of a FASTA text as (the header's first word, the sequence's lines joined)."""
    records, header, body = [], None, []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                records.append((header, "".join(body)))
            header, body = line[1:].split()[0] if line[1:].strip() else "", []
        elif line:
            body.append(line)
    if header is not None:
        records.append((header, "".join(body)))
    return records


def _boltz_fields(header: str) -> list[str] | None:
    """A boltz header's fields (`CHAIN|type[|msa]`); None for any other header."""
    parts = header.split("|")
    return parts if len(parts) >= 2 and parts[1].lower() in ENTITY_TYPES else None


def _chain_names():
    yield from CHAIN_LETTERS
    for first in CHAIN_LETTERS:
        for second in CHAIN_LETTERS:
            yield first + second


def document_from_fasta(text: str) -> dict:
    """A FASTA text as a document. boltz's headers (`>CHAIN|protein|msa`, `>CHAIN|dna`,
    `>CHAIN|smiles`, `>CHAIN|ccd`) say each record's chain and type; a record with any other
    header (`>ubiquitin human`, a UniProt `>sp|P0CG48|UBC_HUMAN`) is a protein on the next
    chain id no boltz header takes (A, B, …), as the form's paste box reads it."""
    records = fasta_records(text)
    taken = {fields[0] for header, _ in records if (fields := _boltz_fields(header))}
    free = (chain for chain in _chain_names() if chain not in taken)
    sequences = []
    for header, sequence in records:
        fields = _boltz_fields(header)
        if fields is None:
            sequences.append({"protein": {"id": next(free), "sequence": sequence}})
            continue
        chain, kind = fields[0], fields[1].lower()
        if not chain:
            raise invalid(
                f"FASTA header '>{header}': boltz wants '>CHAIN|{kind}', the chain's id first."
            )
        if kind in POLYMERS:
            entity = {"id": chain, "sequence": sequence}
            if len(fields) > 2 and fields[2]:
                entity["msa"] = fields[2]
            sequences.append({kind: entity})
        else:
            sequences.append({"ligand": {"id": chain, kind: sequence}})
    return {"version": 1, "sequences": sequences}


def check_document(document) -> dict:
    """The document normalised, or a 400 naming the first problem found."""
    if not isinstance(document, dict):
        raise invalid("A Boltz input is a mapping with `sequences`.")
    unknown = sorted(set(document) - SECTIONS)
    if unknown:
        raise invalid(f"Unknown section(s) {', '.join(unknown)}; a Boltz input has {SECTIONS}.")
    if document.get("version", 1) != 1:
        raise invalid("Boltz-2 inputs are `version: 1`.")
    sequences = document.get("sequences")
    if not isinstance(sequences, list) or not sequences:
        raise invalid("The input has no `sequences`: list its proteins, DNA, RNA and ligands.")
    if len(sequences) > MAX_ENTITIES:
        raise invalid(f"At most {MAX_ENTITIES} entities.")
    chains: dict[str, tuple[str, int]] = {}  # chain id -> (kind, length)
    normalised = []
    for number, item in enumerate(sequences, start=1):
        normalised.append(_entity(number, item, chains))
    result = {"version": 1, "sequences": normalised}
    if document.get("templates"):
        result["templates"] = _templates(document["templates"], chains)
    if "constraints" in document:
        result["constraints"] = _constraints(document["constraints"], chains)
    if "properties" in document:
        result["properties"] = _properties(document["properties"], chains)
    return result


def _entity(number: int, item, chains: dict) -> dict:
    if not isinstance(item, dict) or len(item) != 1:
        raise invalid(f"Entity {number}: one of protein, dna, rna or ligand, with its fields.")
    kind, body = next(iter(item.items()))
    if kind not in (*POLYMERS, "ligand") or not isinstance(body, dict):
        raise invalid(f"Entity {number}: '{kind}' is not protein, dna, rna or ligand.")
    ids = body.get("id")
    ids = ids if isinstance(ids, list) else [ids]
    name = entity_name(number, item)
    for chain in ids:
        if not isinstance(chain, str) or not CHAIN_ID.match(chain):
            raise invalid(f"{name}: a chain id is 1 to 4 letters or digits.")
        if chain in chains:
            raise invalid(f"{name}: chain {chain} is named twice.")
    entity = dict(body)
    if kind in POLYMERS:
        sequence = body.get("sequence")
        if not isinstance(sequence, str) or not sequence.strip():
            raise invalid(f"{name}: it needs a `sequence`.")
        sequence = "".join(sequence.split()).upper()
        if len(sequence) > MAX_RESIDUES:
            raise invalid(f"{name}: over {MAX_RESIDUES:,} residues.")
        allowed = _letters(kind)
        for position, letter in enumerate(sequence, start=1):
            if letter not in allowed:
                raise invalid(
                    f"{name}: '{letter}' at position {position} is not a {kind} letter "
                    f"({''.join(sorted(allowed))})."
                )
        entity["sequence"] = sequence
        for modification in body.get("modifications") or []:
            position = modification.get("position") if isinstance(modification, dict) else None
            if not isinstance(position, int) or not 1 <= position <= len(sequence):
                raise invalid(
                    f"{name}: a modification's `position` is a residue number, 1 to "
                    f"{len(sequence)}."
                )
            if not isinstance(modification.get("ccd"), str):
                raise invalid(f"{name}: a modification names its residue's `ccd` code.")
        if "cyclic" in body and not isinstance(body["cyclic"], bool):
            raise invalid(f"{name}: `cyclic` is true or false.")
        if kind == "protein":
            # Absent: the job's `msa` parameter says where its MSA comes from.
            msa = body.get("msa")
            if msa in (None, ""):
                pass
            elif msa == "empty":
                entity["msa"] = "empty"
            else:
                entity["msa"] = upload_id(
                    msa,
                    f"{name}: `msa` is `empty` (single sequence) or the id of an A3M or CSV "
                    "upload of this project, not a path",
                )
        length = len(sequence)
    else:
        smiles, ccd = body.get("smiles"), body.get("ccd")
        if (smiles is None) == (ccd is None):
            raise invalid(f"{name}: a ligand has either `smiles` or `ccd`.")
        if smiles is not None:
            _check_smiles(name, smiles)
        elif not isinstance(ccd, str | list) or not ccd:
            raise invalid(f"{name}: `ccd` is a CCD code, such as ATP.")
        length = 1
    for chain in ids:
        chains[chain] = (kind, length)
    return {kind: entity}


def entity_name(number: int, item: dict) -> str:
    """How a message names an entity: `Entity 2 (ligand B)`."""
    kind, body = next(iter(item.items()))
    ids = body.get("id")
    ids = ids if isinstance(ids, list) else [ids]
    return f"Entity {number} ({kind} {', '.join(map(str, ids))})"


# Letters boltz takes in a protein but reads as an unknown residue (UNK), like X: each stands
# for more than one amino acid (B, Z, J) or for one it has no token of its own (U, O).
AMBIGUOUS = "BJOUZ"


def ambiguous_letters(document: dict) -> list[str]:
    """One warning per protein of a checked document with letters boltz reads as unknown."""
    warnings = []
    for number, item in enumerate(document["sequences"], start=1):
        kind, body = next(iter(item.items()))
        if kind != "protein":
            continue
        found = [(i, c) for i, c in enumerate(body["sequence"], start=1) if c in AMBIGUOUS]
        if found:
            where = ", ".join(f"{letter} at {position}" for position, letter in found[:10])
            more = f" and {len(found) - 10} more" if len(found) > 10 else ""
            warnings.append(
                f"{entity_name(number, item)}: {where}{more}: boltz reads B, J, O, U and Z as "
                "an unknown residue (UNK), as it reads X; write the amino acid meant."
            )
    return warnings


def naming_ccd(document: dict, code: str) -> list[str]:
    """The entities of a checked document that name a CCD code (a ligand, or a modified
    residue), as messages name them."""
    found = []
    for number, item in enumerate(document["sequences"], start=1):
        kind, body = next(iter(item.items()))
        codes = body.get("ccd") if kind == "ligand" else None
        codes = codes if isinstance(codes, list) else [codes]
        codes += [m.get("ccd") for m in body.get("modifications") or []]
        if code in codes:
            found.append(entity_name(number, item))
    return found


def upload_id(value, problem: str) -> int:
    """An upload's id as a document gives it: a number, or its decimal digits (a FASTA header
    or YAML may quote it)."""
    from portal.ids import parse_id

    number = parse_id(value) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or parse_id(str(number)) is None:
        raise invalid(f"{problem}.")
    return number


def _templates(templates, chains: dict) -> list:
    """boltz's `templates` with uploads for files: [{cif | pdb: <upload id>, chain_id,
    template_id, force, threshold}]."""
    if not isinstance(templates, list):
        raise invalid("`templates` is a list.")
    proteins = {chain for chain, (kind, _) in chains.items() if kind == "protein"}
    normalised = []
    for number, template in enumerate(templates, start=1):
        label = f"Template {number}"
        if not isinstance(template, dict):
            raise invalid(f"{label}: its fields, as a mapping.")
        unknown = sorted(
            set(template) - {"cif", "pdb", "chain_id", "template_id", "force", "threshold"}
        )
        if unknown:
            raise invalid(f"{label}: unknown field(s) {', '.join(unknown)}.")
        formats = [key for key in ("cif", "pdb") if key in template]
        if len(formats) != 1:
            raise invalid(f"{label}: either `cif` or `pdb`, the id of a structure upload.")
        entry = {
            formats[0]: upload_id(
                template[formats[0]],
                f"{label}: `{formats[0]}` is the id of an uploaded "
                f"{'mmCIF' if formats[0] == 'cif' else 'PDB'} file of this project, not a path",
            )
        }
        chain_ids = template.get("chain_id")
        if chain_ids is not None:
            listed = chain_ids if isinstance(chain_ids, list) else [chain_ids]
            for chain in listed:
                if chain not in proteins:
                    raise invalid(f"{label}: chain {chain} is not a protein chain of the input.")
            entry["chain_id"] = chain_ids
        template_ids = template.get("template_id")
        if template_ids is not None:
            listed = template_ids if isinstance(template_ids, list) else [template_ids]
            if not all(isinstance(t, str) and t for t in listed):
                raise invalid(f"{label}: `template_id` names the template's chains.")
            if chain_ids is None or len(listed) != len(
                chain_ids if isinstance(chain_ids, list) else [chain_ids]
            ):
                raise invalid(
                    f"{label}: `template_id` pairs with `chain_id`, one template chain each."
                )
            entry["template_id"] = template_ids
        threshold = template.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 < threshold < math.inf
        ):
            raise invalid(f"{label}: `threshold` is a distance in Å, above 0.")
        if "force" in template:
            if not isinstance(template["force"], bool):
                raise invalid(f"{label}: `force` is true or false.")
            if template["force"] and threshold is None:
                raise invalid(
                    f"{label}: a forced template needs `threshold`, the distance in Å the "
                    "prediction may stray from it."
                )
            entry["force"] = template["force"]
        if threshold is not None:
            entry["threshold"] = threshold
        normalised.append(entry)
    return normalised


class Reference(NamedTuple):
    what: str  # msa, cif or pdb
    upload: int  # the upload's id
    where: str  # the entity or template naming it
    sequence: str = ""  # an MSA's chain sequence


def references(document: dict) -> list[Reference]:
    """The uploads a checked document names, in its order."""
    found = []
    for number, item in enumerate(document["sequences"], start=1):
        kind, body = next(iter(item.items()))
        if kind == "protein" and isinstance(body.get("msa"), int):
            ids = body["id"] if isinstance(body["id"], list) else [body["id"]]
            where = f"Entity {number} (protein {', '.join(ids)})"
            found.append(Reference("msa", body["msa"], where, body["sequence"]))
    for number, template in enumerate(document.get("templates") or [], start=1):
        what = "cif" if "cif" in template else "pdb"
        found.append(Reference(what, template[what], f"Template {number}"))
    return found


def without_msa(document: dict) -> list[tuple[str, str]]:
    """(first chain id, sequence) of each protein entity that names no MSA of its own (not
    even `empty`): those whose MSA the job's `msa` parameter decides."""
    found = []
    for item in document["sequences"]:
        kind, body = next(iter(item.items()))
        if kind == "protein" and "msa" not in body:
            ids = body["id"] if isinstance(body["id"], list) else [body["id"]]
            found.append((ids[0], body["sequence"]))
    return found


def with_msas(document: dict, msas: dict[str, str]) -> dict:
    """The document with each protein entity that names no MSA given the one in `msas` for
    its first chain, or `empty` (single sequence)."""
    result = dict(document, sequences=[])
    for item in document["sequences"]:
        kind, body = next(iter(item.items()))
        if kind == "protein" and "msa" not in body:
            ids = body["id"] if isinstance(body["id"], list) else [body["id"]]
            body = {**body, "msa": msas.get(ids[0], "empty")}
        result["sequences"].append({kind: body})
    return result


def with_files(document: dict, files: dict) -> dict:
    """The document with each file reference (a protein's `msa`, a template's `cif` or
    `pdb`) found in `files` replaced by what it maps to: an upload's id by the path of its
    copy, or a path by a name."""
    result = dict(document, sequences=[])
    for item in document["sequences"]:
        kind, body = next(iter(item.items()))
        if kind == "protein" and body.get("msa") in files:
            body = {**body, "msa": files[body["msa"]]}
        result["sequences"].append({kind: body})
    if "templates" in document:
        result["templates"] = [
            {k: files.get(v, v) if k in ("cif", "pdb") else v for k, v in template.items()}
            for template in document["templates"]
        ]
    return result


def _check_smiles(name: str, smiles) -> None:
    from rdkit import Chem, RDLogger

    if not isinstance(smiles, str) or not smiles.strip():
        raise invalid(f"{name}: `smiles` is a SMILES string.")
    RDLogger.DisableLog("rdApp.*")  # the reason is ours to give
    if Chem.MolFromSmiles(smiles) is None:
        raise invalid(f"{name}: the SMILES '{smiles}' does not parse.")


def _token(label: str, value, chains: dict, atom: bool = False) -> None:
    """`[chain, residue]` (or `[chain, residue, atom]`) naming something in the input."""
    size = 3 if atom else 2
    if not isinstance(value, list) or len(value) not in ((size,) if atom else (2, 3)):
        raise invalid(f"{label}: a {'[chain, residue, atom]' if atom else '[chain, residue]'}.")
    chain, residue = value[0], value[1]
    if chain not in chains:
        raise invalid(f"{label}: chain {chain} is not in the input.")
    kind, length = chains[chain]
    if kind in POLYMERS and not (isinstance(residue, int) and 1 <= residue <= length):
        raise invalid(f"{label}: residue {residue} is not in chain {chain} (1 to {length}).")


def _constraints(constraints, chains: dict) -> list:
    if not isinstance(constraints, list):
        raise invalid("`constraints` is a list.")
    for number, item in enumerate(constraints, start=1):
        if not isinstance(item, dict) or len(item) != 1:
            raise invalid(f"Constraint {number}: one of bond, pocket or contact.")
        kind, body = next(iter(item.items()))
        label = f"Constraint {number} ({kind})"
        if not isinstance(body, dict):
            raise invalid(f"{label}: its fields, as a mapping.")
        if kind == "bond":
            _token(f"{label} atom1", body.get("atom1"), chains, atom=True)
            _token(f"{label} atom2", body.get("atom2"), chains, atom=True)
        elif kind == "pocket":
            if body.get("binder") not in chains:
                raise invalid(
                    f"{label}: the binder chain {body.get('binder')} is not in the input."
                )
            contacts = body.get("contacts")
            if not isinstance(contacts, list) or not contacts:
                raise invalid(f"{label}: `contacts`, a list of [chain, residue].")
            for contact in contacts:
                _token(f"{label} contact", contact, chains)
            distance = body.get("max_distance", 6)
            if not isinstance(distance, int | float) or not 4 <= distance <= 20:
                raise invalid(f"{label}: `max_distance` is 4 to 20 Å.")
        elif kind == "contact":
            _token(f"{label} token1", body.get("token1"), chains)
            _token(f"{label} token2", body.get("token2"), chains)
        else:
            raise invalid(f"{label}: not bond, pocket or contact.")
    return constraints


def _properties(properties, chains: dict) -> list:
    if not isinstance(properties, list):
        raise invalid("`properties` is a list.")
    binders = []
    for item in properties:
        affinity = item.get("affinity") if isinstance(item, dict) else None
        if not isinstance(affinity, dict) or set(item) != {"affinity"}:
            raise invalid("The only property Boltz-2 predicts is `affinity: {binder: <chain>}`.")
        binder = affinity.get("binder")
        if binder not in chains:
            raise invalid(f"Affinity: the binder chain {binder} is not in the input.")
        if chains[binder][0] != "ligand":
            raise invalid(
                f"Affinity: chain {binder} is a {chains[binder][0]}; the binder is a ligand."
            )
        binders.append(binder)
    if len(binders) > 1:
        raise invalid("Affinity is predicted for one ligand per input.")
    return properties


def af3_chain_ids(document: dict) -> dict[str, str]:
    """Each chain id of the document and its AlphaFold 3 id: AlphaFold 3 takes uppercase
    letters only, so an id that is not (`A1`, `b`) gets the next letters no other chain has
    (A … Z, then AA, AB, …); an id that is keeps itself."""
    ids = []
    for item in document["sequences"]:
        body = next(iter(item.values()))
        ids += body["id"] if isinstance(body["id"], list) else [body["id"]]
    fine = {chain for chain in ids if chain.isascii() and chain.isalpha() and chain.isupper()}
    free = (name for name in _chain_names() if name not in fine)
    return {chain: chain if chain in fine else next(free) for chain in ids}


def as_alphafold3(
    document: dict,
    name: str,
    seed: int | list[int],
    msa_text=lambda upload: "",
    searched=None,
    data_pipeline: bool = False,
) -> tuple[dict, dict]:
    """The same input for AlphaFold 3 (its JSON, dialect alphafold3, version 2), and a report:
    `{"chain_ids": {id: AlphaFold 3's id}, "warnings": [...]}`, a warning for each thing
    AlphaFold 3's input has no form for (a cyclic chain, a pocket or contact constraint,
    affinity, templates, whose residue mapping it would need). Bond constraints become
    bondedAtomPairs. A protein's MSA: its upload (`msa_text(upload id)`, as A3M) as its
    `unpairedMsa`; else the one its search found (`searched[chain]`: (unpaired, paired) A3M);
    else none (empty MSAs: AlphaFold 3 then predicts it single sequence, as boltz did). An
    RNA chain's MSA is empty. With `data_pipeline` (AlphaFold 3's own search on its
    databases), a protein that names no MSA (neither an upload nor `empty`) names none in
    AlphaFold 3's input, and AlphaFold 3 searches it."""
    searched = searched or {}
    ids = af3_chain_ids(document)
    warnings = []

    def mapped(chain):
        return [ids[c] for c in chain] if isinstance(chain, list) else ids[chain]

    sequences = []
    for number, item in enumerate(document["sequences"], start=1):
        kind, body = next(iter(item.items()))
        chain = mapped(body["id"])
        if kind == "ligand":
            entry = (
                {"smiles": body["smiles"]}
                if "smiles" in body
                else {"ccdCodes": body["ccd"] if isinstance(body["ccd"], list) else [body["ccd"]]}
            )
            sequences.append({"ligand": {"id": chain, **entry}})
            continue
        if body.get("cyclic"):
            warnings.append(
                f"{entity_name(number, item)} is cyclic; AlphaFold 3's input has no cyclic "
                "chains, so it is predicted linear."
            )
        entry = {"id": chain, "sequence": body["sequence"]}
        modifications = body.get("modifications") or []
        if kind == "protein":
            entry["modifications"] = [
                {"ptmType": m["ccd"], "ptmPosition": m["position"]} for m in modifications
            ]
            msa = body.get("msa")
            first = body["id"][0] if isinstance(body["id"], list) else body["id"]
            unpaired, paired = "", ""
            if isinstance(msa, int):
                unpaired = msa_text(msa)
            elif msa is None and first in searched:
                unpaired, paired = searched[first]
            if not data_pipeline or msa is not None:  # an upload, or `empty`
                entry |= {"unpairedMsa": unpaired, "pairedMsa": paired, "templates": []}
        else:
            entry["modifications"] = [
                {"modificationType": m["ccd"], "basePosition": m["position"]} for m in modifications
            ]
            if kind == "rna" and not data_pipeline:
                entry["unpairedMsa"] = ""
        sequences.append({kind: entry})
    bonds = []
    for number, constraint in enumerate(document.get("constraints") or [], start=1):
        kind = next(iter(constraint), "?")
        if kind == "bond":
            atom1, atom2 = constraint["bond"]["atom1"], constraint["bond"]["atom2"]
            bonds.append([[ids[atom1[0]], *atom1[1:]], [ids[atom2[0]], *atom2[1:]]])
        else:
            warnings.append(
                f"Constraint {number} ({kind}) is left out: AlphaFold 3's input has no {kind} "
                "constraints."
            )
    if document.get("templates"):
        warnings.append(
            f"{len(document['templates'])} template(s) left out: AlphaFold 3 wants each "
            "template's mmCIF with its residue mapping to the query, which this export does "
            "not make."
        )
    if any("affinity" in p for p in document.get("properties") or []):
        warnings.append(
            "Affinity is left out: AlphaFold 3 predicts no binding affinity (Boltz-2's "
            "affinity model can score its complex afterwards)."
        )
    renamed = [f"chain {mine} is {theirs}" for mine, theirs in ids.items() if mine != theirs]
    if renamed:
        said = ", ".join(renamed[:-1]) + (" and " if len(renamed) > 1 else "") + renamed[-1]
        warnings.append(
            f"{said[0].upper()}{said[1:]} in AlphaFold 3's input and structure: it takes chain "
            "ids of uppercase letters only."
        )
    converted = {
        "name": name,
        "modelSeeds": seed if isinstance(seed, list) else [seed],
        "sequences": sequences,
        "dialect": "alphafold3",
        "version": 2,
    }
    if bonds:
        converted["bondedAtomPairs"] = bonds
    return converted, {"chain_ids": ids, "warnings": warnings}
