"""Screens: one target against N ligands, through the portal against cold `boltz predict`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/screen.py [--n 32]

With the tiny random Boltz-2 the tests build (tests/boltzkit.py; nothing can be downloaded here)
on the CPU, a throwaway portal with one node of one CPU slot (bench/design.py's `Portal`), it
scores N small ligands against one 40-residue target three ways and prints the wall time and
the slot-seconds (the time a slot was held: a child job's start to its end, or a process's
whole life):

- a `cofold` screen through the portal: each ligand a Boltz-2 prediction with affinity, on the
  slot's warm engine;
- N cold `boltz predict` processes, one per ligand (target + ligand + affinity YAML), the usual
  one-process-per-job set-up;
- a `poses` screen through the portal: Boltz-2's affinity model on each ligand's pose (an RDKit
  conformer placed as given) against the target's structure, no structure prediction.

Options for all: no recycling, 10 sampling steps, the affinity pass with 10 steps and 1 sample
(the tiny model's: cheap figures, the same work for each way). Goals (issue 24): cofold at least
4x fewer slot-seconds than cold processes; poses faster per ligand than cofold, by the factor
measured.
"""

import argparse
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.design import Portal  # noqa: E402  (after the path)
from tests.boltzkit import boltz_predict, make_boltz_cache  # noqa: E402

TARGET = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRV"
OPTIONS = {
    "recycling_steps": 0,
    "sampling_steps": 10,
    "sampling_steps_affinity": 10,
    "diffusion_samples_affinity": 1,
    "seed": 0,
}
CLI_AFFINITY = ("--sampling_steps_affinity", "10", "--diffusion_samples_affinity", "1")
FRAGMENTS = ["C", "CC", "O", "N", "c1ccccc1", "C(=O)O", "CN", "OC", "Cl", "F"]


def ligands(n: int) -> list[tuple[str, str]]:
    """N small, distinct, valid ligands (name, SMILES)."""
    from rdkit import Chem

    found, seen = [], set()
    for a in FRAGMENTS:
        for b in FRAGMENTS:
            for c in FRAGMENTS:
                smiles = Chem.MolToSmiles(Chem.MolFromSmiles(f"{a}C{b}C{c}"))
                if smiles not in seen:
                    seen.add(smiles)
                    found.append((f"ligand-{len(found) + 1:03d}", smiles))
                if len(found) == n:
                    return found
    raise SystemExit(f"at most {len(found)} ligands")


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def screen(portal: Portal, params: dict, files: list[tuple[str, bytes]]) -> dict:
    """Upload the files, run a screen of them to its end: {wall, slot, ligands, children}."""
    from bench.dispatch import wait_for

    inputs = []
    for name, data in files:
        response = portal.session.post(
            f"{portal.url}/api/v1/uploads/",
            data={"project": portal.project},
            files={"file": (name, data)},
            timeout=60,
        )
        response.raise_for_status()
        inputs.append(response.json()["id"])
    began = time.monotonic()
    response = portal.session.post(
        f"{portal.url}/api/v1/jobs/",
        json={"project": portal.project, "kind": "screen", "inputs": inputs, "params": params},
        timeout=120,
    )
    if response.status_code != 201:
        raise SystemExit(f"the screen was refused: {response.status_code} {response.text}")
    pk = response.json()["id"]
    finished = ("succeeded", "failed", "cancelled")
    wait_for(lambda: portal.get(f"/api/v1/jobs/{pk}/")["state"] in finished, 1800, "the screen")
    wall = time.monotonic() - began
    job = portal.get(f"/api/v1/jobs/{pk}/")
    if job["state"] != "succeeded":
        raise SystemExit(f"screen {pk} {job['state']}: {job['error']!r}; logs in {portal.work}")
    rows, page = [], f"/api/v1/jobs/{pk}/ligands/"
    while page:
        answer = portal.get(page)
        rows += answer["results"]
        page = answer["next"] and answer["next"].removeprefix(portal.url)
    children = [portal.get(f"/api/v1/jobs/{r['job']}/") for r in rows if r["job"]]
    slot = sum(seconds_between(c["started_at"], c["finished_at"]) for c in children)
    return {"wall": wall, "slot": slot, "scored": sum(r["rank"] is not None for r in rows)}


def cold(cache: dict, chosen: list[tuple[str, str]], work: Path) -> dict:
    folder = work / "cold-inputs"
    folder.mkdir()
    began = time.monotonic()
    for name, smiles in chosen:
        path = folder / f"{name}.yaml"
        path.write_text(
            "version: 1\nsequences:\n"
            f"  - protein: {{id: A, sequence: {TARGET}, msa: empty}}\n"
            f"  - ligand: {{id: B, smiles: '{smiles}'}}\n"
            "properties:\n  - affinity: {binder: B}\n"
        )
        boltz_predict(
            cache,
            path,
            work / "cold" / name,
            "--affinity_checkpoint",
            str(cache["affinity_checkpoint"]),
            *CLI_AFFINITY,
        )
    wall = time.monotonic() - began
    return {"wall": wall, "slot": wall, "scored": len(chosen)}


def poses(chosen: list[tuple[str, str]]) -> bytes:
    """An SDF of each ligand's RDKit conformer (a stand-in for a docking tool's poses)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    text = ""
    for name, smiles in chosen:
        mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
        AllChem.EmbedMolecule(mol, randomSeed=1)
        mol.SetProp("_Name", name)
        text += Chem.MolToMolBlock(mol) + "$$$$\n"
    return text.encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="portal-screen-"))
    portal, keep = None, False
    try:
        cache = make_boltz_cache(work / "boltz-cache")
        chosen = ligands(args.n)
        target = work / "target.yaml"
        target.write_text(
            f"version: 1\nsequences:\n  - protein: {{id: A, sequence: {TARGET}, msa: empty}}\n"
        )
        # The target's structure for the poses, and the page cache, for every side alike.
        structure = boltz_predict(cache, target, work / "target") / "target_model_0.cif"
        portal = Portal(cache, work)
        portal.start()
        portal.add_nodes("bench")
        table = "name,smiles\n" + "".join(f"{n},{s}\n" for n, s in chosen)
        print(f"cofold screen of {args.n} ...", flush=True)
        cofold = screen(
            portal,
            {"mode": "cofold", "target": TARGET, "msa": "single", **OPTIONS},
            [("ligands.csv", table.encode())],
        )
        print(f"poses screen of {args.n} ...", flush=True)
        affinity_only = {k: OPTIONS[k] for k in OPTIONS if "affinity" in k or k == "seed"}
        posed = screen(
            portal,
            {"mode": "poses", **affinity_only},
            [("target.cif", structure.read_bytes()), ("poses.sdf", poses(chosen))],
        )
        portal.stop()
        portal = None
        print(f"{args.n} cold `boltz predict` ...", flush=True)
        cold_ = cold(cache, chosen, work)
    except SystemExit:
        keep = True
        raise
    finally:
        if portal is not None:
            portal.stop()
        if keep:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    n = args.n
    print(f"\n{n} ligands against one {len(TARGET)}-residue target (tiny random Boltz-2, CPU)")
    print(f"{'':<42}{'wall s':>8}{'slot-s':>9}{'slot-s / ligand':>17}{'scored':>8}")
    for name, row in [
        ("cofold screen (portal, one slot)", cofold),
        (f"{n} cold `boltz predict` with affinity", cold_),
        ("poses screen (portal, one slot)", posed),
    ]:
        print(
            f"{name:<42}{row['wall']:>8.1f}{row['slot']:>9.1f}{row['slot'] / n:>17.2f}"
            f"{row['scored']:>8}"
        )
    gain = cold_["slot"] / cofold["slot"]
    print(
        f"\ncofold vs cold processes: {gain:.1f}x fewer slot-seconds (goal >= 4x: "
        f"{'met' if gain >= 4 else 'missed'}); poses vs cofold: "
        f"{cofold['slot'] / posed['slot']:.1f}x fewer slot-seconds per ligand"
    )


if __name__ == "__main__":
    main()
