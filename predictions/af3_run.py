"""An `af3` job on its node: AlphaFold 3's run_alphafold.py, then its outputs as a prediction's.

    python -m predictions.af3_run REQUEST.json

The request (predictions/af3.py: `Af3Kind.build`) names the command that runs AlphaFold 3 on
this node, its input JSON, the folders and the options. AlphaFold 3 gets its own flags
(`--json_path`, `--output_dir`, `--model_dir`, `--db_dir` or `--norun_data_pipeline`,
`--num_diffusion_samples`, `--num_recycles`); what it prints goes to the job's log, its stages
to the job's progress. Then its output folder, in AlphaFold 3's documented layout (a folder
named after the job, a `seed-<seed>_sample-<n>` folder per prediction with its mmCIF, its
confidences and summary confidences, the top-ranked prediction's files beside them, the input
with its MSAs as `<name>_data.json`, the ranking scores), is read into the files the portal's
prediction page shows, named as boltz names them (`<record>_model_<k>.cif`,
`confidence_<record>_model_<k>.json`, `pae_…npz`, `plddt_…npz`, `chains.json`), the samples
ranked by AlphaFold 3's ranking score (0 the best), and AlphaFold 3's own folder is kept whole
under `af3/`. No Django here: it runs in a bare subprocess.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from jobs import markers

# AlphaFold 3's lines that start a stage, and the progress each stands for.
STAGES = [
    ("Running data pipeline", 5, "AlphaFold 3's data pipeline"),
    ("Skipping data pipeline", 5, "the portal's MSAs"),
    ("Featurising data", 25, "featurising"),
    ("Running model inference", 35, "model inference"),
    ("Extracting inference results", 80, "extracting the results"),
    ("Writing outputs", 90, "writing the outputs"),
]


def af3_argv(request: dict, gpu: str, uid: int, gid: int) -> list[str]:
    """The node's command with AlphaFold 3's flags, as run_alphafold.py takes them; `{gpu}`,
    `{uid}` and `{gid}` in the command become the job's GPU (as CUDA_VISIBLE_DEVICES names it)
    and this process's user and group (for a container: `--gpus device={gpu}`,
    `--user {uid}:{gid}`)."""
    values = {"{gpu}": gpu, "{uid}": str(uid), "{gid}": str(gid)}
    command = []
    for word in request["command"]:
        for placeholder, value in values.items():
            word = word.replace(placeholder, value)
        command.append(word)
    argv = [
        *command,
        f"--json_path={request['json_path']}",
        f"--output_dir={request['output_dir']}",
        f"--model_dir={request['model_dir']}",
        f"--num_diffusion_samples={request['num_diffusion_samples']}",
        f"--num_recycles={request['num_recycles']}",
    ]
    if request["data_pipeline"]:
        if request.get("db_dir"):
            argv.append(f"--db_dir={request['db_dir']}")
    else:
        argv.append("--norun_data_pipeline")
    return argv


def run(argv: list[str]) -> int:
    """Run AlphaFold 3, its lines into the job's log, its stages as progress."""
    print("running AlphaFold 3: " + " ".join(argv), flush=True)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    for line in process.stdout:
        line = line.rstrip("\n")
        print(line, flush=True)
        for start, percent, message in STAGES:
            if line.startswith(start):
                markers.progress(percent, message)
    return process.wait()


def output_folder(root: Path) -> Path:
    """The job's folder AlphaFold 3 wrote (named after the job; the run's folder is fresh)."""
    folders = [p for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    if len(folders) != 1:
        raise SystemExit(f"AlphaFold 3 wrote {len(folders)} output folders in {root}, not one")
    return folders[0]


def one(folder: Path, pattern: str, but: str | None = None) -> Path:
    """The file of `folder` matching `pattern` (AlphaFold 3 prefixes its files with the job's
    name in its current layout, and did not in its first), but one whose name ends in `but`."""
    found = [p for p in sorted(folder.glob(pattern)) if not (but and p.name.endswith(but))]
    if not found:
        raise SystemExit(f"AlphaFold 3 wrote no {pattern} in {folder.name}")
    return found[0]


def token_plddts(model: Path, confidences: dict) -> np.ndarray:
    """Each token's pLDDT (0 to 1) from AlphaFold 3's per-atom pLDDTs: a residue's is the mean
    of its atoms', a ligand's atom (a token of its own) its own. The atoms are in the mmCIF's
    order; they are grouped by chain and residue as the tokens are."""
    import gemmi

    block = gemmi.cif.read(str(model)).sole_block()
    table = block.find("_atom_site.", ["auth_asym_id", "auth_seq_id"])
    atoms = [(row[0], row[1]) for row in table]
    values = np.asarray(confidences["atom_plddts"], dtype=np.float64) / 100.0
    if len(atoms) != len(values):
        raise SystemExit(f"{model.name} has {len(atoms)} atoms, its confidences {len(values)}")
    groups: dict[tuple[str, str], list[float]] = {}
    for key, value in zip(atoms, values, strict=True):
        groups.setdefault(key, []).append(value)
    keys = [
        (str(c), str(r))
        for c, r in zip(confidences["token_chain_ids"], confidences["token_res_ids"], strict=True)
    ]
    counts: dict[tuple[str, str], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    seen: dict[tuple[str, str], int] = {}
    plddt = []
    for key in keys:
        atoms_of = groups.get(key, [])
        nth = seen.get(key, 0)
        seen[key] = nth + 1
        if counts[key] > 1 and counts[key] == len(atoms_of):
            plddt.append(atoms_of[nth])  # a ligand's atoms, a token each
        else:
            plddt.append(float(np.mean(atoms_of)) if atoms_of else 0.0)
    return np.asarray(plddt, dtype=np.float32)


def chains(confidences: dict, names: dict, types: dict) -> list[dict]:
    """The chains in token order (the PAE's rows), named as in the scientist's input."""
    order: list[str] = []
    tokens: dict[str, int] = {}
    for chain in confidences["token_chain_ids"]:
        if chain not in tokens:
            order.append(chain)
            tokens[chain] = 0
        tokens[chain] += 1
    kinds = {"ligand": "nonpolymer"}
    return [
        {
            "name": names.get(chain, chain),
            "type": kinds.get(types.get(chain, ""), types.get(chain, "")),
            "tokens": tokens[chain],
        }
        for chain in order
    ]


def confidence(summary: dict, confidences: dict, order: list[str]) -> dict:
    """A sample's figures in the shape of boltz's confidence JSON, which the page reads (the
    ranking score as its confidence score), with AlphaFold 3's own beside them."""
    matrix = summary.get("chain_pair_iptm") or []
    chain_ptm = summary.get("chain_ptm") or []
    pairs = {
        str(i): {str(j): value for j, value in enumerate(row) if value is not None}
        for i, row in enumerate(matrix)
    }
    return {
        "confidence_score": summary.get("ranking_score"),
        "ptm": summary.get("ptm"),
        "iptm": summary.get("iptm"),
        "complex_plddt": float(np.mean(confidences["atom_plddts"])) / 100.0,
        "chains_ptm": {str(i): value for i, value in enumerate(chain_ptm)},
        "pair_chains_iptm": pairs,
        "chain_ids": order,
        **{key: summary[key] for key in AF3_FIGURES if key in summary},
    }


AF3_FIGURES = (
    "ranking_score",
    "fraction_disordered",
    "has_clash",
    "chain_iptm",
    "chain_pair_iptm",
    "chain_pair_pae_min",
    "chain_ptm",
)


def convert(folder: Path, out: Path, record: str, names: dict, types: dict) -> list[dict]:
    """Each sample of AlphaFold 3's folder into the page's files, best ranked first; their
    figures, in that order."""
    samples = []
    for sample in sorted(folder.glob("seed-*_sample-*")):
        if not sample.is_dir():
            continue
        summary = json.loads(one(sample, "*summary_confidences.json").read_text())
        samples.append((float(summary["ranking_score"]), sample.name, sample, summary))
    if not samples:
        raise SystemExit(f"AlphaFold 3 wrote no seed-*_sample-* folder in {folder.name}")
    samples.sort(key=lambda s: (-s[0], s[1]))
    figures = []
    for k, (_, name, sample, summary) in enumerate(samples):
        confidences = json.loads(
            one(sample, "*confidences.json", but="summary_confidences.json").read_text()
        )
        model = one(sample, "*model.cif")
        order = list(dict.fromkeys(confidences["token_chain_ids"]))
        shutil.copyfile(model, out / f"{record}_model_{k}.cif")
        figure = {"sample": name, **confidence(summary, confidences, order)}
        (out / f"confidence_{record}_model_{k}.json").write_text(json.dumps(figure, indent=2))
        pae = np.asarray(confidences["pae"], dtype=np.float32)
        np.savez_compressed(out / f"pae_{record}_model_{k}.npz", pae=pae)
        np.savez_compressed(
            out / f"plddt_{record}_model_{k}.npz", plddt=token_plddts(model, confidences)
        )
        if k == 0:
            (out / "chains.json").write_text(
                json.dumps({"chains": chains(confidences, names, types)})
            )
        figures.append(figure)
    return figures


def report(best: dict, names: dict) -> None:
    """The best sample's figures as the job's metrics, chains by their names in the input."""
    for key in ("ranking_score", "ptm", "iptm", "complex_plddt", "fraction_disordered"):
        if best.get(key) is not None:
            markers.metric(0, key, float(best[key]))
    if best.get("has_clash") is not None:
        markers.metric(0, "has_clash", float(bool(best["has_clash"])))
    order = [names.get(chain, chain) for chain in best["chain_ids"]]
    for i, value in best["chains_ptm"].items():
        markers.metric(0, f"ptm_{order[int(i)]}", float(value))
    for i, row in best["pair_chains_iptm"].items():
        for j, value in row.items():
            if int(i) < int(j):
                markers.metric(0, f"iptm_{order[int(i)]}_{order[int(j)]}", float(value))


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    out = Path(request["out"])
    markers.progress(1, "starting AlphaFold 3")
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    code = run(af3_argv(request, gpu, os.getuid(), os.getgid()))
    if code:
        raise SystemExit(f"AlphaFold 3 exited with code {code}")
    folder = output_folder(Path(request["output_dir"]))
    names, types = request["chain_names"], request["chain_types"]
    figures = convert(folder, out, request["record"], names, types)
    report(figures[0], names)
    # AlphaFold 3's own folder, whole (its input with the MSAs it used, every sample, the
    # ranking scores, its terms of use), and the input the portal gave it.
    shutil.copytree(folder, out / "af3" / folder.name)
    shutil.copyfile(request["json_path"], out / "af3_input.json")
    ranking = next(iter(sorted(folder.glob("*ranking_scores.csv"))), None)
    rows = list(csv.DictReader(ranking.open())) if ranking else []
    provenance = {**request["provenance"], "ranking_scores": rows}
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2))
    best = figures[0]
    print(
        f"AlphaFold 3's best of {len(figures)}: {best['sample']}, ranking score "
        f"{best['ranking_score']:.3f}, pTM {best['ptm']:.3f}"
        + (f", ipTM {best['iptm']:.3f}" if best.get("iptm") is not None else ""),
        flush=True,
    )
    markers.progress(100, "done")


if __name__ == "__main__":
    main()
