"""`portal predict`: boltz's own inputs, options and output layout, on the pool (real nodes, the
tiny model of tests/boltzkit.py, the real `boltz predict` for the reference)."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.models import Job, State
from portal.uploads.models import Upload
from tests.boltzkit import boltz_reference
from tests.conftest import boltz_ready, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PORTAL = str(Path(sys.executable).with_name("portal"))
# The options of tests/boltzkit.py's reference runs (CLI_OPTIONS), as boltz's flags.
FAST = ["--recycling_steps", "0", "--sampling_steps", "10"]
A3M = (
    ">query\nMKTAYIAKQRQISFVKSHFSRQ\n"
    ">hom1 a close homologue\nMKTAYLAKQRQISFVKSHFSRE\n"
    ">hom2 with a deletion\nMKSAYIAKQRQ-SFVKSHFSRQ\n"
)
INPUTS = {
    # An MSA and a template, named by paths relative to the working directory, as boltz opens them.
    "with_files.yaml": (
        "version: 1\nsequences:\n"
        "  - protein: {id: A, sequence: MKTAYIAKQRQISFVKSHFSRQ, msa: msas/homologues.a3m}\n"
        "templates:\n  - {cif: templates/earlier.cif, chain_id: A}\n"
    ),
    "smiles.fasta": ">A|protein|empty\nMKTAYIAKQRQISFVKSHFSRQ\n>B|smiles\nCC(=O)Oc1ccccc1C(=O)O\n",
    "multimer.yaml": (
        "version: 1\nsequences:\n"
        "  - protein: {id: A, sequence: MKTAYIAKQRQISFVK, msa: empty}\n"
        "  - protein: {id: B, sequence: GSHMSLFDFFKNK, msa: empty}\n"
    ),
    "cyclic.yaml": (
        "version: 1\nsequences:\n"
        "  - protein: {id: A, sequence: GRCTKSIPPICFPD, msa: empty, cyclic: true}\n"
    ),
    "affinity.yaml": (
        "version: 1\nsequences:\n"
        "  - protein: {id: A, sequence: MKTAYIAKQRQISFVKSHFSRQ, msa: empty}\n"
        "  - ligand: {id: B, smiles: 'CC(=O)Oc1ccccc1C(=O)O'}\n"
        "properties:\n  - affinity: {binder: B}\n"
    ),
}


def tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def portal(url, key, *args, cwd: Path, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [PORTAL, "--url", url, "--token", key, "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def work(tmp_path, boltz_cache) -> Path:
    """A scientist's folder: the inputs in `inputs/`, the files they name beside them."""
    work = tmp_path / "work"
    (work / "inputs").mkdir(parents=True)
    (work / "msas").mkdir()
    (work / "msas" / "homologues.a3m").write_text(A3M)
    # The template: an earlier prediction of the chain (boltz's own, kept between runs).
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "earlier.yaml").write_text(
        INPUTS["multimer.yaml"].split("  - protein: {id: B")[0]
    )
    earlier = boltz_reference(
        boltz_cache, tmp_path / "earlier" / "earlier.yaml", tmp_path / "e", seed=1
    )
    (work / "templates").mkdir()
    (work / "templates" / "earlier.cif").write_bytes((earlier / "earlier_model_0.cif").read_bytes())
    for name, text in INPUTS.items():
        (work / "inputs" / name).write_text(text)
    return work


def test_portal_predict_writes_what_boltz_predict_writes_in_its_layout_and_runs_once(
    boltz_stack, boltz_cache, project, alice, alice_key, work, tmp_path
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), what="node-a to report its weights")
    before = {p.name: p.read_bytes() for p in (work / "inputs").iterdir()}

    run = portal(
        boltz_stack.url,
        alice_key,
        "predict",
        "inputs",
        "--out_dir",
        "../A",
        "--seed",
        "7",
        *FAST,
        # Flags that change nothing boltz writes are taken, as boltz takes them.
        *("--write_full_pae", "--write_full_pde", "--num_workers", "2"),
        "--project",
        project.name,
        cwd=work,
    )

    # Each input's folder holds what `boltz predict` writes for it, byte for byte, and the
    # portal's provenance; nothing else.
    results = tmp_path / "A" / "boltz_results_inputs" / "predictions"
    assert sorted(p.name for p in results.iterdir()) == sorted(Path(n).stem for n in INPUTS)
    for name in INPUTS:
        record = Path(name).stem
        extra = ("--affinity_checkpoint", str(boltz_cache["affinity_checkpoint"]))
        cli = boltz_reference(
            boltz_cache, work / "inputs" / name, tmp_path / "B" / record, *extra, seed=7, cwd=work
        )
        got = tree(results / record)
        assert json.loads(got.pop("provenance.json"))["seed"] == 7
        assert sorted(got) == sorted(tree(cli)), record
        for file, data in tree(cli).items():
            assert got[file] == data, f"{record}/{file}"
    assert (results / "affinity" / "affinity_affinity.json").exists()
    # The user's files are as they were; the named files went up once, as uploads.
    assert {p.name: p.read_bytes() for p in (work / "inputs").iterdir()} == before
    assert Upload.objects.filter(project=project, name="homologues.a3m").count() == 1
    # Each job's end is said with its figures.
    assert "affinity (job" in run.stdout and "binder probability" in run.stdout, run.stdout
    assert "seed 7" in run.stdout
    jobs = set(Job.objects.filter(kind="predict").values_list("pk", flat=True))
    assert len(jobs) == len(INPUTS)

    # The same command again: the folders are there, so nothing is predicted (as boltz); with
    # --override, the batch's key answers the jobs it made, and the files are written again.
    again = portal(
        boltz_stack.url,
        alice_key,
        "predict",
        "inputs",
        "--out_dir",
        "../A",
        "--seed",
        "7",
        *FAST,
        "--project",
        project.name,
        cwd=work,
    )
    assert "Nothing to predict" in again.stdout
    (results / "cyclic" / "cyclic_model_0.cif").unlink()
    portal(
        boltz_stack.url,
        alice_key,
        "predict",
        "inputs",
        "--out_dir",
        "../A",
        "--override",
        "--seed",
        "7",
        *FAST,
        "--project",
        project.name,
        cwd=work,
    )
    assert set(Job.objects.filter(kind="predict").values_list("pk", flat=True)) == jobs
    assert (results / "cyclic" / "cyclic_model_0.cif").exists()


def test_a_portal_predict_cut_off_and_run_again_makes_no_job_twice(
    boltz_stack, project, alice, alice_key, work, tmp_path
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), what="node-a to report its weights")
    for name in ("with_files.yaml", "smiles.fasta", "cyclic.yaml"):
        (work / "inputs" / name).unlink()
    command = [
        PORTAL,
        "--url",
        boltz_stack.url,
        "--token",
        alice_key,
        "-q",
        "predict",
        "inputs",
        "--out_dir",
        "../C",
        "--seed",
        "3",
        *FAST,
        "--project",
        str(project.pk),
    ]
    # Killed (as a laptop closed, or a cut connection) once its jobs are in.
    first = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_until(lambda: Job.objects.filter(kind="predict").count() == 2, what="the batch")
    first.send_signal(signal.SIGKILL)
    first.wait(10)

    done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert Job.objects.filter(kind="predict").count() == 2
    assert set(Job.objects.values_list("state", flat=True)) == {State.SUCCEEDED}
    results = tmp_path / "C" / "boltz_results_inputs" / "predictions"
    assert (results / "multimer" / "multimer_model_0.cif").exists()
    assert (results / "affinity" / "affinity_affinity.json").exists()


@pytest.mark.parametrize(
    "args, files, said",
    [
        (["--cache", "/data/boltz"], {}, "--cache: not on the portal's pool"),
        (["--subsample_msa"], {}, "--subsample_msa: not on the portal's pool"),
        (
            [],
            {"in/x.yaml": "sequences:\n  - protein: {id: A, sequence: MKT, msa: secret.txt}\n"},
            "the MSA of protein A 'secret.txt': boltz reads .a3m or .csv files",
        ),
        (
            [],
            {"in/x.yaml": "sequences:\n  - protein: {id: A, sequence: MKT, msa: gone.a3m}\n"},
            "the MSA of protein A 'gone.a3m' is not a file",
        ),
        (
            [],
            {"in/x.fasta": ">A|protein|~/.ssh/id_rsa\nMKT\n"},
            "boltz reads .a3m or .csv files there",
        ),
        (
            [],
            {"in/x.yaml": "sequences:\n  - protein: {id: A, sequence: MKT}\n"},
            "protein A has no MSA",
        ),
        ([], {"in/notes.txt": "x"}, "boltz reads .fasta, .fa, .fas, .yaml or .yml files"),
    ],
)
def test_what_the_pool_cannot_honour_is_refused_before_anything_is_sent(
    tmp_path, args, files, said
):
    (tmp_path / "in").mkdir()
    (tmp_path / "secret.txt").write_text("not an MSA")
    (tmp_path / "in" / "ok.yaml").write_text(INPUTS["cyclic.yaml"])
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # Nothing listens at this address: a refusal that came after a connection would say so.
    done = portal("http://127.0.0.1:9", "k", "predict", "in", *args, cwd=tmp_path, check=False)

    assert done.returncode != 0
    assert said in done.stderr, done.stderr
    assert "connection" not in done.stderr
