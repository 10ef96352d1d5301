"""The real `boltz predict` runs offline on the tiny random model the tests build: the ground
the prediction kind is tested on (nothing downloaded, nothing faked)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROTEIN = (
    "version: 1\nsequences:\n  - protein: {id: A, sequence: MKTAYIAKQRQISFVKSHFSRQ, msa: empty}\n"
)
FILES = [
    "prot_model_0.cif",
    "confidence_prot_model_0.json",
    "pae_prot_model_0.npz",
    "pde_prot_model_0.npz",
    "plddt_prot_model_0.npz",
]


def boltz_predict(boltz_cache, yaml: Path, out: Path, *extra: str) -> Path:
    subprocess.run(
        [
            str(Path(sys.executable).with_name("boltz")),
            "predict",
            str(yaml),
            "--out_dir",
            str(out),
            "--cache",
            str(boltz_cache["cache"]),
            "--checkpoint",
            str(boltz_cache["checkpoint"]),
            "--accelerator",
            "cpu",
            "--no_kernels",
            "--recycling_steps",
            "0",
            "--sampling_steps",
            "10",
            "--num_workers",
            "0",
            "--seed",
            "0",
            *extra,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out / f"boltz_results_{yaml.stem}" / "predictions" / yaml.stem


def test_the_boltz_cli_predicts_offline_every_file_the_same_for_a_seed(boltz_cache, tmp_path):
    yaml = tmp_path / "prot.yaml"
    yaml.write_text(PROTEIN)
    first = boltz_predict(boltz_cache, yaml, tmp_path / "one")
    again = boltz_predict(boltz_cache, yaml, tmp_path / "two")
    assert sorted(p.name for p in first.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
