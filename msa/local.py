"""A local MSA search: pyhmmer's jackhmmer against a sequence database (a FASTA file) on this
machine's disk, `PORTAL_MSA_LOCAL_DB`, turned into an A3M boltz reads.

jackhmmer iterates (a profile built from each round's hits searches the database again) and
gives the hits it included. Each hit is then aligned to a profile of the query alone, whose
columns are the query's residues, which is what an A3M row needs: a residue or `-` per query
position, and insertions in lower case between them. The database's version is its size and
modification time, so an entry of the cache made from an older file is not reused.
"""

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from msa.errors import MsaError, pause
from nodes.probe import local_database_version

ITERATIONS = 3  # jackhmmer's rounds (its -N), at most
MAX_ROWS = 8192  # boltz reads no more rows than this


@dataclass(frozen=True)
class LocalDatabase:
    path: Path
    source = "local"
    poll: float = 1.0  # while another job's search of the same chain runs
    timeout: float = 6 * 3600.0

    @classmethod
    def configured(cls) -> "LocalDatabase | None":
        """The database this machine has (PORTAL_MSA_LOCAL_DB), or None."""
        named = settings.PORTAL_MSA_LOCAL_DB
        return cls(Path(named).expanduser()) if named else None

    @property
    def database(self) -> str:
        return self.path.name

    @property
    def where(self) -> str:
        return f"the local database {self.path.name}"

    @property
    def version(self) -> str:
        try:
            return local_database_version(self.path)
        except OSError as exc:
            raise MsaError(f"The local MSA database {self.path} cannot be read: {exc}") from None

    def search(
        self,
        sequences: list[str],
        *,
        paired: bool = False,
        say: Callable[[str], None] = print,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """Each sequence's A3M (unpaired: a local database has no pairing by species).
        Setting `stop` ends it (MsaStopped) before the next sequence."""
        if paired:
            raise ValueError("A local search gives unpaired MSAs only.")
        found = []
        for sequence in sequences:
            pause(0, stop)
            found.append(self._search_one(sequence, say))
        return found

    def _search_one(self, sequence: str, say: Callable[[str], None]) -> str:
        from pyhmmer import easel, hmmer, plan7

        alphabet = easel.Alphabet.amino()
        query = easel.TextSequence(name=b"query", sequence=sequence).digitize(alphabet)
        say(f"MSA of {len(sequence)} aa: jackhmmer against {self.database}")
        try:
            with easel.SequenceFile(str(self.path), digital=True, alphabet=alphabet) as db:
                targets = db.read_block()
        except (OSError, ValueError) as exc:
            raise MsaError(f"The local MSA database {self.path} cannot be read: {exc}") from None
        cpus = max(1, min(4, os.cpu_count() or 1))
        result = next(hmmer.jackhmmer([query], targets, max_iterations=ITERATIONS, cpus=cpus))
        included = {hit.name for hit in result.hits if hit.included}
        say(f"jackhmmer: {len(included)} hits in {result.iteration} rounds")
        chosen = easel.DigitalSequenceBlock(alphabet, [t for t in targets if t.name in included])
        hmm, _, _ = plan7.Builder(alphabet).build(query, plan7.Background(alphabet))
        rows = [f">query\n{sequence}\n"]
        if len(chosen):
            for hit in next(hmmer.hmmsearch([hmm], chosen, cpus=cpus)):
                if len(rows) >= MAX_ROWS:
                    break
                row = a3m_row(hit.best_domain.alignment, len(sequence))
                rows.append(f">{hit.name}\n{row}\n")
        return "".join(rows)


def a3m_row(alignment, length: int) -> str:
    """A hit's alignment to the query's profile as an A3M row: one residue or `-` per query
    position, the hit's insertions in lower case."""
    row = ["-"] * (alignment.hmm_from - 1)
    for model, residue in zip(alignment.hmm_sequence, alignment.target_sequence, strict=True):
        if model == ".":
            row.append(residue.lower())
        else:
            row.append("-" if residue in "-." else residue.upper())
    row.append("-" * (length - alignment.hmm_to))
    return "".join(row)
