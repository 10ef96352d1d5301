"""`msa`: the MSAs of protein chains, from the configured server or a node's local database,
through the cache (msa/searches.py), on a CPU slot: the job a prediction submits for its chains
without an MSA of their own (msa/protocol.py), which waits for it holding no GPU.

It runs in a thread of the node's runner (a `RunnerKind`), as the cache and the searches' claims
live in the portal's database, which a job's own process is never given. Its lines go to its
own log and to that of the prediction waiting for it. It writes one file per chain: the A3M,
or, where chains are paired, boltz's CSV (`key,sequence`: the paired rows keyed by their row,
then the chain's unpaired rows keyed -1), as `boltz predict` builds with `--use_msa_server`.
"""

import re

from rest_framework import serializers

from jobs.kinds.base import Output, RunContext, RunnerKind
from jobs.lifecycle import events_append, log_line
from jobs.models import Job, State
from msa.colabfold import MsaServer
from msa.errors import MsaError
from msa.local import LocalDatabase
from msa.models import Source
from msa.protocol import KIND, file_name
from msa.searches import msas, paired_blocks, server_paired_msa
from msa.services import normalise
from nodes.models import Node
from portal.errors import PortalError

PROTEIN = re.compile(r"^[ACDEFGHIKLMNPQRSTVWYXUOBZJ]+$")
MAX_PAIRED_ROWS = 8192  # boltz's const.max_paired_seqs
MAX_ROWS = 16384  # boltz's const.max_msa_seqs: paired and unpaired rows together


class ChainParams(serializers.Serializer):
    id = serializers.RegexField(r"^[A-Za-z0-9_]{1,8}$", help_text="The chain's id (A, B, …).")
    sequence = serializers.CharField(max_length=10000)

    def validate_sequence(self, value):
        value = normalise(value)
        if not PROTEIN.match(value):
            raise serializers.ValidationError("A protein sequence, in one-letter codes.")
        return value


class MsaParams(serializers.Serializer):
    source = serializers.ChoiceField(
        choices=[Source.SERVER, Source.LOCAL],
        help_text="The configured MSA server, or a node's local database (PORTAL_MSA_LOCAL_DB).",
    )
    chains = ChainParams(
        many=True,
        allow_empty=False,
        max_length=100,
        help_text='The protein chains, a JSON list: [{"id": "A", "sequence": "MKTAYIAKQR"}].',
    )

    def validate_chains(self, value):
        ids = [chain["id"] for chain in value]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError("Each chain's id once.")
        return value


SOURCE_ENGINE = {Source.SERVER: "msa_server", Source.LOCAL: "msa_local"}


def unavailable(source: str) -> str | None:
    """Why MSAs from this source cannot be had now, or None."""
    if source == Source.SERVER and not MsaServer.configured():
        return (
            "This portal has no MSA server: sequences are only sent to a server an operator "
            "configured (PORTAL_MSA_SERVER_URL). Give each protein an MSA, or predict it single "
            "sequence: the job parameter `msa: single` (with `portal predict`, leave out "
            "--use_msa_server; in a Boltz YAML, a protein's `msa: empty`)."
        )
    engine = SOURCE_ENGINE[source]
    if not any(
        node.cpu_slots and node.can_run(engine) for node in Node.objects.filter(enabled=True)
    ):
        if source == Source.SERVER:
            return "No node with a CPU slot can reach the MSA server (PORTAL_MSA_SERVER_URL)."
        return "No node with a CPU slot has a local MSA database (PORTAL_MSA_LOCAL_DB)."
    return None


class MsaKind(RunnerKind):
    name = KIND
    title = "MSA search"
    gpu = "none"
    Params = MsaParams

    def validate(self, params: dict, inputs: list, **context) -> dict:
        cleaned = self.clean_params(params)
        cleaned["chains"] = [dict(chain) for chain in cleaned["chains"]]
        why = unavailable(cleaned["source"])
        if why:
            raise PortalError(why, code="msa_unavailable")
        return cleaned

    def needs(self, params: dict) -> list[str]:
        return [SOURCE_ENGINE[params["source"]]]

    def run(self, context: RunContext, output: Output) -> None:
        source, chains = context.params["source"], context.params["chains"]
        searcher = MsaServer.configured() if source == Source.SERVER else LocalDatabase.configured()
        if searcher is None:
            raise MsaError(f"This node has no {Source(source).label} configured.")
        waiting = Job.objects.filter(pk=context.job_id).values_list("parent_id", flat=True).first()

        def say(line: str) -> None:
            output.line(line)
            if waiting is not None:
                # Its log, and its progress message: what it waits for is doing this.
                progress = {"type": "progress", "percent": 0, "message": line[:500]}
                events_append(
                    job_id=waiting, events=[log_line(line), progress], states=(State.PENDING,)
                )

        distinct = list(dict.fromkeys(chain["sequence"] for chain in chains))
        for chain in chains:
            say(f"Chain {chain['id']} ({len(chain['sequence'])} aa): MSA from {searcher.where}")
        output.progress(5, f"searching {len(distinct)} sequence(s) at {searcher.where}")
        unpaired = dict(
            zip(distinct, msas(searcher, distinct, say=say, stop=output.stopping), strict=True)
        )
        texts = {s: _read(entry) for s, entry in unpaired.items()}
        paired = {}
        if source == Source.SERVER and len(distinct) > 1:
            output.progress(50, f"pairing {len(distinct)} chains at {searcher.where}")
            entry = server_paired_msa(searcher, distinct, say=say, stop=output.stopping)
            paired = dict(zip(distinct, paired_blocks(_read(entry)), strict=True))
        for chain in chains:
            sequence = chain["sequence"]
            if paired:
                rows = boltz_csv(paired[sequence], texts[sequence])
                (context.out / file_name(chain["id"], paired=True)).write_text(rows)
            else:
                (context.out / file_name(chain["id"], paired=False)).write_text(texts[sequence])
            say(f"Chain {chain['id']}: MSA ready ({'paired' if paired else 'unpaired'})")
        output.progress(100, "MSAs ready")


def _read(entry) -> str:
    from django.core.files.storage import default_storage

    with default_storage.open(entry.storage_key, "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def a3m_rows(text: str) -> list[str]:
    """The aligned rows of an A3M text, in order (a record's lines joined)."""
    rows, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(">"):
            if current is not None:
                rows.append(current)
            current = ""
        elif line and current is not None:
            current += line
    if current is not None:
        rows.append(current)
    return rows


def boltz_csv(paired: str, unpaired: str) -> str:
    """A chain's MSA as boltz's CSV: its paired rows keyed by their row number (the same key
    in every chain of the complex is one organism's row), all-gap rows left out; then its
    unpaired rows keyed -1, without the query again, up to boltz's limits."""
    paired_rows = a3m_rows(paired)[:MAX_PAIRED_ROWS]
    keyed = [(key, row) for key, row in enumerate(paired_rows) if row.strip("-")]
    unpaired_rows = a3m_rows(unpaired)[: MAX_ROWS - len(keyed)]
    if keyed:
        unpaired_rows = unpaired_rows[1:]
    lines = ["key,sequence"]
    lines += [f"{key},{row}" for key, row in keyed]
    lines += [f"-1,{row}" for row in unpaired_rows]
    return "\n".join(lines) + "\n"
