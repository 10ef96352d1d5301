"""A stand-in for AlphaFold 3's run_alphafold.py, for the tests (real AlphaFold 3 cannot run
here: its weights are licensed, and it needs a GPU). A node runs it as its PORTAL_AF3_COMMAND.

It takes run_alphafold.py's flags as absl parses them (`--name=value`, `--name value`,
`--flag` / `--noflag`; an unknown flag is a fatal error), and checks what AlphaFold 3 checks of
them and of its input JSON (google-deepmind/alphafold3, docs/input.md and
folding_input.py): one of --json_path or --input_dir, an --output_dir, a --model_dir that
exists, --db_dir folders when the data pipeline runs; the JSON's dialect `alphafold3` and a
version from 1 to 4, a name, non-empty modelSeeds of integers, no unknown field anywhere, each
sequence exactly one of protein / rna / dna / ligand, chain ids of uppercase letters and unique,
a ligand with exactly one of ccdCodes / smiles, modifications inside their sequence, and with
--norun_data_pipeline a protein's unpairedMsa, pairedMsa and templates, and an RNA's
unpairedMsa, all given (AlphaFold 3 refuses to run without them), each MSA starting with its
chain's sequence. What it refuses, it says on stderr, exiting 1.

Then it writes AlphaFold 3's documented output layout (docs/output.md) for each seed and
sample: a folder named after the job's sanitised name holding `seed-<seed>_sample-<n>/` with
`<job>_seed-<seed>_sample-<n>_model.cif`, `_confidences.json` and `_summary_confidences.json`;
the best-ranked sample's three files as `<job>_model.cif`, …; `<job>_data.json` (the input, its
MSAs filled in where its data pipeline ran); `<job>_ranking_scores.csv`; `TERMS_OF_USE.md`. The
structure is made up (each residue's backbone on a helix, a ligand's atoms beside it), its
figures drawn from a generator seeded by the seed and sample: only their shape is AlphaFold
3's. It prints the lines run_alphafold.py prints at each stage.
"""

import csv
import json
import math
import random
import re
import string
import sys
from pathlib import Path

FLAGS = {
    # name: kind ("str", "int", "bool", "multi")
    "json_path": "str",
    "input_dir": "str",
    "output_dir": "str",
    "model_dir": "str",
    "db_dir": "multi",
    "run_data_pipeline": "bool",
    "run_inference": "bool",
    "num_diffusion_samples": "int",
    "num_recycles": "int",
    "num_seeds": "int",
    "save_embeddings": "bool",
    "save_distogram": "bool",
    "force_output_dir": "bool",
    "gpu_device": "int",
    "jax_compilation_cache_dir": "str",
    "flash_attention_implementation": "str",
}
THREE = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU",
    "G": "GLY", "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE",
    "P": "PRO", "S": "SER", "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}  # fmt: skip
FIELDS = {
    "protein": {
        "id", "sequence", "modifications", "unpairedMsa", "unpairedMsaPath", "pairedMsa",
        "pairedMsaPath", "templates", "description",
    },
    "rna": {"id", "sequence", "modifications", "unpairedMsa", "unpairedMsaPath", "description"},
    "dna": {"id", "sequence", "modifications", "description"},
    "ligand": {"id", "ccdCodes", "smiles", "description"},
}  # fmt: skip
TOP = {"dialect", "version", "name", "modelSeeds", "sequences", "bondedAtomPairs", "userCCD",
       "userCCDPath"}  # fmt: skip


def refuse(message: str) -> None:
    print(f"FATAL {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def parse_flags(argv: list[str]) -> dict:
    flags: dict = {"run_data_pipeline": True, "num_diffusion_samples": 5, "num_recycles": 10}
    flags["db_dir"] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            refuse(f"Flags parsing error: unexpected argument {arg!r}")
        name, has_value, value = arg[2:].partition("=")
        if name not in FLAGS and name.startswith("no") and FLAGS.get(name[2:]) == "bool":
            flags[name[2:]] = False
        elif name not in FLAGS:
            refuse(f"Flags parsing error: Unknown command line flag '{name}'")
        elif FLAGS[name] == "bool":
            flags[name] = value.lower() in ("true", "1") if has_value else True
        else:
            if not has_value:
                i += 1
                if i == len(argv):
                    refuse(f"Flags parsing error: Missing value for flag --{name}")
                value = argv[i]
            if FLAGS[name] == "int":
                if not re.fullmatch(r"-?\d+", value):
                    refuse(f"Flags parsing error: flag --{name}={value}: Expect an integer")
                flags[name] = int(value)
            elif FLAGS[name] == "multi":
                flags[name].append(value)
            else:
                flags[name] = value
        i += 1
    return flags


def check_msa(text: str, sequence: str, where: str) -> None:
    if not text:
        return
    if not text.startswith(">"):
        refuse(f"{where}: the MSA is not in A3M format")
    first = next((line for line in text.splitlines()[1:] if line and not line.startswith(">")), "")
    if re.sub(r"[a-z.]", "", first) != sequence:
        refuse(f"{where}: the MSA's first sequence is not the query sequence")


def check_input(data: dict, run_data_pipeline: bool) -> list[dict]:
    """The chains of the input, as AlphaFold 3 reads them: (id, kind, body)."""
    if not isinstance(data, dict):
        refuse("The input JSON must be an object")
    unknown = set(data) - TOP
    if unknown:
        refuse(f"Unexpected top-level fields: {sorted(unknown)}")
    if data.get("dialect") != "alphafold3":
        refuse(f"Unsupported dialect {data.get('dialect')!r}, expected 'alphafold3'")
    if data.get("version") not in (1, 2, 3, 4):
        refuse(f"Unsupported version {data.get('version')!r}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        refuse("The job needs a name")
    seeds = data.get("modelSeeds")
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        refuse("modelSeeds must be a non-empty list of integers")
    chains, seen = [], set()
    for entry in data.get("sequences") or refuse("No sequences"):
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in FIELDS:
            refuse(f"A sequence must be exactly one of {sorted(FIELDS)}: {entry!r}")
        kind, body = next(iter(entry.items()))
        unknown = set(body) - FIELDS[kind]
        if unknown:
            refuse(f"Unexpected {kind} fields: {sorted(unknown)}")
        ids = body.get("id")
        ids = ids if isinstance(ids, list) else [ids]
        for chain in ids:
            if not isinstance(chain, str) or not re.fullmatch(r"[A-Z]+", chain):
                refuse(f"Invalid chain id {chain!r}: chain ids are uppercase letters")
            if chain in seen:
                refuse(f"Chain id {chain} is used twice")
            seen.add(chain)
        if kind == "ligand":
            if ("ccdCodes" in body) == ("smiles" in body):
                refuse(f"Ligand {ids}: give exactly one of ccdCodes or smiles")
        else:
            sequence = body.get("sequence")
            if not isinstance(sequence, str) or not re.fullmatch(r"[A-Z]+", sequence):
                refuse(f"{kind} {ids}: a sequence of uppercase letters is needed")
            for modification in body.get("modifications") or []:
                position = modification.get("ptmPosition", modification.get("basePosition"))
                if not isinstance(position, int) or not 1 <= position <= len(sequence):
                    refuse(f"{kind} {ids}: modification position {position!r} outside its chain")
            if not run_data_pipeline:
                needed = ("unpairedMsa", "pairedMsa", "templates") if kind == "protein" else ()
                needed = ("unpairedMsa",) if kind == "rna" else needed
                for field in needed:
                    if body.get(field) is None and body.get(field + "Path") is None:
                        refuse(
                            f"{kind} chain {ids[0]}: {field} must be set when the data "
                            "pipeline is not run"
                        )
            for field in ("unpairedMsa", "pairedMsa"):
                if isinstance(body.get(field), str):
                    check_msa(body[field], sequence, f"{kind} chain {ids[0]} {field}")
        for chain in ids:
            chains.append({"id": chain, "kind": kind, "body": body})
    for pair in data.get("bondedAtomPairs") or []:
        if len(pair) != 2 or any(len(atom) != 3 or atom[0] not in seen for atom in pair):
            refuse(f"Invalid bondedAtomPairs entry {pair!r}")
    return chains


def sanitised(name: str) -> str:
    allowed = set(string.ascii_letters + string.digits + "_-.")
    return "".join(c for c in name.replace(" ", "_") if c in allowed)


def ligand_atoms(body: dict) -> list[str]:
    if "smiles" in body:
        from rdkit import Chem

        molecule = Chem.MolFromSmiles(body["smiles"])
        if molecule is None:
            refuse(f"Ligand {body['id']}: RDKit cannot read the SMILES {body['smiles']!r}")
        return [f"{a.GetSymbol().upper()}{i + 1}" for i, a in enumerate(molecule.GetAtoms())]
    return [f"C{i + 1}" for i in range(len(body["ccdCodes"]))]


def structure(chains: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """Made-up atoms (chain, residue number, residue, atom, element, x, y, z) and tokens
    (chain, residue number, its atoms)."""
    atoms, tokens = [], []
    for c, chain in enumerate(chains):
        kind, body = chain["kind"], chain["body"]
        if kind == "ligand":
            names = ligand_atoms(body)
            residue = (body.get("ccdCodes") or ["LIG"])[0]
            for i, atom in enumerate(names):
                xyz = (20.0 * c + 1.5 * i, 5.0, 0.0)
                atoms.append((chain["id"], 1, residue, atom, atom.rstrip("0123456789"), *xyz))
                tokens.append((chain["id"], 1, 1))
            continue
        backbone = ("N", "CA", "C", "O") if kind == "protein" else ("P", "C4'", "N1")
        for r, letter in enumerate(body["sequence"], start=1):
            residue = THREE.get(letter, "UNK") if kind == "protein" else letter
            angle = math.radians(100 * r)
            for a, atom in enumerate(backbone):
                xyz = (
                    20.0 * c + 2.3 * math.cos(angle) + 0.4 * a,
                    2.3 * math.sin(angle),
                    1.5 * r + 0.3 * a,
                )
                atoms.append((chain["id"], r, residue, atom, atom[0], *xyz))
            tokens.append((chain["id"], r, len(backbone)))
    return atoms, tokens


def mmcif(name: str, atoms: list[tuple], plddts: list[float]) -> str:
    lines = [
        f"data_{sanitised(name) or 'job'}",
        "#",
        "loop_",
        *(
            f"_atom_site.{field}"
            for field in (
                "group_PDB id type_symbol label_atom_id label_comp_id label_asym_id "
                "label_seq_id auth_asym_id auth_seq_id Cartn_x Cartn_y Cartn_z occupancy "
                "B_iso_or_equiv pdbx_PDB_model_num"
            ).split()
        ),
    ]
    for number, (atom, plddt) in enumerate(zip(atoms, plddts, strict=True), start=1):
        chain, residue_number, residue, atom_name, element, x, y, z = atom
        label = f'"{atom_name}"' if "'" in atom_name else atom_name
        lines.append(
            f"ATOM {number} {element} {label} {residue} {chain} {residue_number} {chain} "
            f"{residue_number} {x:.3f} {y:.3f} {z:.3f} 1.00 {plddt:.2f} 1"
        )
    return "\n".join([*lines, "#", ""])


def predict(chains: list[dict], name: str, seed: int, sample: int) -> dict:
    rng = random.Random(seed * 1000 + sample)
    atoms, tokens = structure(chains)
    plddts = [round(rng.uniform(40, 95), 2) for _ in atoms]
    n = len(tokens)
    pae = [[round(0.5 if i == j else rng.uniform(1, 30), 2) for j in range(n)] for i in range(n)]
    ids = [chain["id"] for chain in chains]
    matrix = [[round(rng.uniform(0.2, 0.9), 2) for _ in ids] for _ in ids]
    ptm = round(rng.uniform(0.3, 0.9), 2)
    iptm = round(rng.uniform(0.2, 0.9), 2) if len(ids) > 1 else None
    summary = {
        "chain_iptm": [round(rng.uniform(0.2, 0.9), 2) for _ in ids],
        "chain_pair_iptm": matrix,
        "chain_pair_pae_min": [[round(rng.uniform(0.5, 20), 2) for _ in ids] for _ in ids],
        "chain_ptm": [matrix[i][i] for i in range(len(ids))],
        "fraction_disordered": round(rng.uniform(0, 0.3), 2),
        "has_clash": 0.0,
        "iptm": iptm,
        "ptm": ptm,
        "ranking_score": round(0.8 * (iptm if iptm is not None else ptm) + 0.2 * ptm, 3),
    }
    confidences = {
        "atom_chain_ids": [atom[0] for atom in atoms],
        "atom_plddts": plddts,
        "contact_probs": [[round(rng.uniform(0, 1), 2) for _ in range(n)] for _ in range(n)],
        "pae": pae,
        "token_chain_ids": [token[0] for token in tokens],
        "token_res_ids": [token[1] for token in tokens],
    }
    return {"model": mmcif(name, atoms, plddts), "summary": summary, "confidences": confidences}


def data_json(data: dict, run_data_pipeline: bool) -> dict:
    """The input with its MSAs and templates, as its data pipeline leaves it (here: the query
    alone for what it had to search)."""
    if not run_data_pipeline:
        return data
    filled = json.loads(json.dumps(data))
    for entry in filled["sequences"]:
        kind, body = next(iter(entry.items()))
        if kind in ("protein", "rna") and body.get("unpairedMsa") is None:
            body["unpairedMsa"] = f">query\n{body['sequence']}\n"
        if kind == "protein":
            body.setdefault("pairedMsa", "")
            body.setdefault("templates", [])
    return filled


def main() -> None:
    flags = parse_flags(sys.argv[1:])
    print(f"stand-in for run_alphafold.py, flags: {json.dumps(flags, sort_keys=True)}", flush=True)
    if bool(flags.get("json_path")) == bool(flags.get("input_dir")):
        refuse("Exactly one of --json_path or --input_dir must be specified.")
    if not flags.get("output_dir"):
        refuse("--output_dir must be specified.")
    if not flags.get("model_dir") or not Path(flags["model_dir"]).is_dir():
        refuse(f"No model parameters in --model_dir={flags.get('model_dir')}")
    if flags["run_data_pipeline"] and not any(Path(d).is_dir() for d in flags["db_dir"]):
        refuse("The data pipeline needs its databases: --db_dir")
    data = json.loads(Path(flags["json_path"]).read_text())
    chains = check_input(data, flags["run_data_pipeline"])
    name = data["name"]
    print(f"\nRunning fold job {name}...", flush=True)
    folder = Path(flags["output_dir"]) / sanitised(name)
    folder.mkdir(parents=True)
    print(f"Output will be written in {folder}", flush=True)
    if flags["run_data_pipeline"]:
        print("Running data pipeline...", flush=True)
    else:
        print("Skipping data pipeline...", flush=True)
    job = sanitised(name)
    seeds = data["modelSeeds"]
    print(f"Featurising data with {len(seeds)} seed(s)...", flush=True)
    results = []
    for seed in seeds:
        print(f"Running model inference with seed {seed}...", flush=True)
        print(f"Extracting inference results with seed {seed}...", flush=True)
        for sample in range(flags["num_diffusion_samples"]):
            results.append((seed, sample, predict(chains, name, seed, sample)))
    print(f"Writing outputs with {len(seeds)} seed(s)...", flush=True)
    for seed, sample, result in results:
        where = folder / f"seed-{seed}_sample-{sample}"
        where.mkdir()
        prefix = f"{job}_seed-{seed}_sample-{sample}"
        (where / f"{prefix}_model.cif").write_text(result["model"])
        (where / f"{prefix}_confidences.json").write_text(json.dumps(result["confidences"]))
        (where / f"{prefix}_summary_confidences.json").write_text(json.dumps(result["summary"]))
    seed, sample, best = max(results, key=lambda r: r[2]["summary"]["ranking_score"])
    (folder / f"{job}_model.cif").write_text(best["model"])
    (folder / f"{job}_confidences.json").write_text(json.dumps(best["confidences"]))
    (folder / f"{job}_summary_confidences.json").write_text(json.dumps(best["summary"]))
    (folder / f"{job}_data.json").write_text(
        json.dumps(data_json(data, flags["run_data_pipeline"]), indent=2)
    )
    with open(folder / f"{job}_ranking_scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "sample", "ranking_score"])
        writer.writerows((s, k, r["summary"]["ranking_score"]) for s, k, r in results)
    (folder / "TERMS_OF_USE.md").write_text("Output terms of use (stand-in).\n")
    print(f"Fold job {name} done, output written to {folder}\n", flush=True)


if __name__ == "__main__":
    main()
