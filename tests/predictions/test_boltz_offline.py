"""The real `boltz predict` runs offline on the tiny random model the tests build: the ground
the prediction kind is tested on (nothing downloaded, nothing faked)."""

import pytest

from tests.boltzkit import boltz_predict, boltz_reference

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


def test_the_boltz_cli_predicts_offline_every_file_the_same_for_a_seed(boltz_cache, tmp_path):
    yaml = tmp_path / "prot.yaml"
    yaml.write_text(PROTEIN)
    first = boltz_predict(boltz_cache, yaml, tmp_path / "one")
    # The same input and seed in another process: the run the reference cache kept from before
    # (what every byte-for-byte comparison with the CLI relies on), or a new one if none is.
    again = boltz_reference(boltz_cache, yaml, tmp_path / "two")
    assert sorted(p.name for p in first.iterdir()) == sorted(FILES)
    for name in FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
