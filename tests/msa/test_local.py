"""A local MSA search: jackhmmer (pyhmmer) against a small FASTA database the test writes,
giving an A3M boltz reads, cached under the database's name and version; the node reports
its database in its heartbeat."""

import random
from pathlib import Path

import pytest

from msa.errors import MsaError
from msa.local import LocalDatabase
from msa.models import MsaEntry
from msa.searches import msas
from msa.selectors import cache_stats

pytestmark = pytest.mark.django_db

AMINO = "ACDEFGHIKLMNPQRSTVWY"
QUERY = (
    "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDF"
    "SAGEGLYTHMKALRPDEDRLSPLHSVYVDQWDWERVMGDGERQFSTLKSTVEAIWAGIKATEAAVSEEFGLAPFLPDQIHFVHSQ"
)


def write_database(path: Path, query: str = QUERY, homologues: int = 12, decoys: int = 20) -> Path:
    """Made-up homologues of the query (mutated; some with an insertion, some truncated)
    among random decoys."""
    rng = random.Random(7)
    records = []
    for k in range(homologues):
        letters = list(query)
        for _ in range((5 + 3 * k) * len(query) // len(QUERY)):
            letters[rng.randrange(len(letters))] = rng.choice(AMINO)
        sequence = "".join(letters)
        if k % 4 == 1:
            sequence = sequence[:60] + "GGSGG" + sequence[60:]
        if k % 4 == 2:
            sequence = sequence[25:]
        records.append((f"hom{k}", sequence))
    for k in range(decoys):
        records.append((f"decoy{k}", "".join(rng.choice(AMINO) for _ in range(150))))
    path.write_text("".join(f">{name} made up\n{seq}\n" for name, seq in records))
    return path


def rows(a3m: str) -> list[str]:
    return [line for line in a3m.splitlines() if line and not line.startswith(">")]


def test_jackhmmer_gives_an_a3m_boltz_reads(tmp_path):
    from boltz.data.parse.a3m import parse_a3m

    database = LocalDatabase(write_database(tmp_path / "mini.fasta"))
    (a3m,) = database.search([QUERY], say=lambda line: None)
    found = rows(a3m)
    assert found[0] == QUERY
    names = [line[1:].split()[0] for line in a3m.splitlines() if line.startswith(">")][1:]
    assert sorted(names) == sorted(f"hom{k}" for k in range(12))  # no decoy
    # Every row has one residue or gap per query position; insertions are lower case.
    assert all(sum(1 for c in row if not c.islower()) == len(QUERY) for row in found)
    assert any("ggsgg" in row for row in found)
    assert any(row.startswith("-" * 20) for row in found)  # the truncated ones
    (tmp_path / "msa.a3m").write_text(a3m)
    msa = parse_a3m(tmp_path / "msa.a3m", taxonomy=None, max_seqs=8192)
    assert len(msa.sequences) == 13


def test_a_local_msa_is_cached_under_its_database_and_version(tmp_path):
    path = write_database(tmp_path / "mini.fasta")
    lines = []
    (entry,) = msas(LocalDatabase(path), [QUERY], say=lines.append)
    assert entry.source == "local" and entry.database == "mini.fasta"
    assert any("jackhmmer against mini.fasta" in line for line in lines)
    (again,) = msas(LocalDatabase(path), [QUERY], say=lines.append)
    assert again.pk == entry.pk and cache_stats()["hits"] == 1
    # Another version of the database is searched again.
    path.write_text(path.read_text() + ">extra\nMKTAYIAKQR\n")
    (newer,) = msas(LocalDatabase(path), [QUERY], say=lines.append)
    assert newer.pk != entry.pk and MsaEntry.objects.count() == 2


def test_a_database_that_cannot_be_read_is_a_clear_failure(tmp_path):
    with pytest.raises(MsaError, match="cannot be read"):
        LocalDatabase(tmp_path / "absent.fasta").search([QUERY], say=lambda line: None)
    with pytest.raises(MsaError, match="cannot be read"):
        msas(LocalDatabase(tmp_path / "absent.fasta"), [QUERY])
    (tmp_path / "garbled.fasta").write_bytes(b"\x00\x01 not a sequence file")
    with pytest.raises(MsaError, match="cannot be read"):
        msas(LocalDatabase(tmp_path / "garbled.fasta"), [QUERY])
    assert not MsaEntry.objects.exists()


def test_a_node_reports_its_local_database(tmp_path, monkeypatch):
    from nodes import probe

    monkeypatch.delenv("PORTAL_MSA_LOCAL_DB", raising=False)
    assert probe.msa_local_info()["ready"] is False
    path = write_database(tmp_path / "mini.fasta")
    monkeypatch.setenv("PORTAL_MSA_LOCAL_DB", str(path))
    info = probe.msa_local_info()
    assert info["ready"] and info["database"] == "mini.fasta" and info["pyhmmer"]
