"""`af3`: AlphaFold 3 on the nodes whose operator installed it (its weights are licensed to each
lab by Google DeepMind; none can be fetched here).

The input is a prediction's (a Boltz YAML or FASTA upload, or `params.input`), converted by the
AlphaFold 3 export (predictions/inputs.py: `as_alphafold3`), whose warnings the job carries; or
AlphaFold 3's own JSON, uploaded, run as written (predictions/af3_json.py).
The MSAs are the portal's (uploads, or the MSA cache's searches, as `unpairedMsa` and
`pairedMsa`; AlphaFold 3 then runs with `--norun_data_pipeline`), or, with
`data_pipeline`, AlphaFold 3's own search on the node's genetic databases. The node runs
`PORTAL_AF3_COMMAND` (a `docker run …` line, or `python run_alphafold.py` in AlphaFold 3's
environment) with AlphaFold 3's flags, through predictions/af3_run.py, which reads AlphaFold 3's
documented output layout into the files a prediction's page shows.
"""

import json
import secrets
import shlex
import sys
from pathlib import Path

from django.conf import settings
from rest_framework import serializers

from jobs.kinds.base import Command, CommandKind, Page, RunContext
from nodes import probe
from nodes.models import Node
from portal.errors import PortalError
from portal.uploads.models import Upload
from predictions import af3_json
from predictions.inputs import as_alphafold3, invalid
from predictions.kinds import (
    DocumentInput,
    PredictKind,
    mols_dir,
    msa_as_a3m,
    msa_field,
    record_field,
    searched_as_a3m,
    tokens,
)
from predictions.results import record_name

# AlphaFold 3's documented sizes (docs/performance.md): inputs up to 1,024 tokens on a 16 GB
# P100 with no configuration changes; up to 5,120 tokens on one 80 GB A100 or H100 (the
# Docker image's default: JAX takes 95 % of the device). Beyond, only with unified memory.
SMALL_TOKENS = 1024
SMALL_GPU = 15 * 2**30
LARGE_GPU = 75 * 2**30  # what an "80 GB" card reports, with room to spare


def af3_memory(tokens: int) -> int:
    """The GPU memory an AlphaFold 3 job of `tokens` tokens asks of placement."""
    return SMALL_GPU if tokens <= SMALL_TOKENS else LARGE_GPU


class Af3Params(serializers.Serializer):
    model_seeds = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**32 - 1),
        min_length=1,
        max_length=20,
        required=False,
        help_text="AlphaFold 3's modelSeeds, a JSON list of integers such as [1, 2] (those of an "
        "uploaded AlphaFold 3 JSON if absent, else one chosen).",
    )
    input = serializers.JSONField(
        required=False,
        help_text=(
            "The input as a Boltz YAML document in JSON, converted to AlphaFold 3's JSON; "
            "instead of an upload (a Boltz YAML or FASTA, converted too, or AlphaFold 3's own "
            "JSON, run as written)."
        ),
    )
    num_diffusion_samples = serializers.IntegerField(
        min_value=1, max_value=25, default=5, help_text="Structures per seed (AlphaFold 3's 5)."
    )
    num_recycles = serializers.IntegerField(
        min_value=1, max_value=40, default=10, help_text="AlphaFold 3's recycles (its 10)."
    )
    data_pipeline = serializers.BooleanField(
        default=False,
        help_text=(
            "Run AlphaFold 3's own data pipeline (its MSA and template search on the node's "
            "genetic databases) for the chains without an uploaded MSA, instead of the "
            "portal's MSAs."
        ),
    )
    msa = msa_field(
        "Without AlphaFold 3's data pipeline: where the MSA of a protein that names none "
        "comes from (the MSA server, a node's local database, or none). Default: the "
        "server where one is configured, else single sequence."
    )
    record = record_field("The name its files go by (by default job- and the job's number).")


def alphafold3(job) -> tuple[dict, dict]:
    """A prediction's or an af3 job's input as AlphaFold 3 JSON, and the report of what it
    maps and leaves out (predictions/inputs.py: `as_alphafold3`). Named after the job and its
    id, so that the output folders of two jobs of one input do not collide. An af3 job given
    AlphaFold 3's own JSON runs that (predictions/af3_json.py: `for_run`)."""
    params = job.params
    uploads = {u.pk: u for u in Upload.objects.filter(job_inputs__job=job)}
    given = [u for u in uploads.values() if u.kind == "json"]
    if given:
        return af3_json.for_run(
            af3_json.read(given[0]),
            f"{job.name} job {job.pk}",
            params["model_seeds"],
            searched_as_a3m(job),
            params.get("data_pipeline", False),
        )
    return as_alphafold3(
        params["input"],
        f"{job.name} job {job.pk}",
        params.get("model_seeds") or params["seed"],
        msa_text=lambda pk: msa_as_a3m(uploads[pk]),
        searched=searched_as_a3m(job),
        data_pipeline=params.get("data_pipeline", False),
    )


class Af3Kind(DocumentInput, CommandKind):
    name = "af3"
    drawn = ("model_seeds",)  # chosen at random where none is given
    title = "Predict a structure (AlphaFold 3)"
    gpu = "required"
    requires = ("af3",)
    optional = True  # most portals have no AlphaFold 3
    whole_gpu = True  # JAX takes 95 % of the GPU as AlphaFold 3 starts
    min_inputs, max_inputs = 0, 1
    input_kinds = ("yaml", "fasta", "json")
    Params = Af3Params
    # A prediction's page (its files are named as a prediction's); the generic form.
    page = Page(
        template=PredictKind.page.template,
        scripts=PredictKind.page.scripts,
        styles=PredictKind.page.styles,
        charts=False,
    )
    headline = (("ranking_score", "ranking"), ("ptm", "pTM"), ("iptm", "ipTM"))

    def validate(self, params: dict, inputs: list, *, project=None, **context) -> dict:
        cleaned = self.clean_params(params)
        given = [u for u in inputs if u.kind == "json"]
        if given:
            if "input" in cleaned:
                raise invalid(
                    "Give the input once: an AlphaFold 3 JSON, a YAML or FASTA upload, or "
                    "`params.input`."
                )
            data = af3_json.read(given[0])
            cleaned["input"] = af3_json.document(data)
            cleaned["af3_json"] = True
            if "model_seeds" not in cleaned and "modelSeeds" in data:
                cleaned["model_seeds"] = data["modelSeeds"]
        else:
            cleaned["input"] = self.clean_document(cleaned, inputs, project)
        why = self.unavailable()
        if why:
            raise PortalError(f"{why}, then submit again.", code="af3_unavailable")
        if "model_seeds" not in cleaned:
            cleaned["model_seeds"] = [secrets.randbelow(2**32)]
        if cleaned["data_pipeline"]:
            cleaned.pop("msa", None)  # AlphaFold 3 searches what has no MSA
        elif "msa" not in cleaned:
            cleaned["msa"] = "server" if settings.PORTAL_MSA_SERVER_URL else "single"
        return cleaned

    def again(self, job) -> tuple[dict, list[int]]:
        """AlphaFold 3's own JSON again as its upload (the document read from it is the portal's
        note of its chains, not an input)."""
        if not job.params.get("af3_json"):
            return super().again(job)
        params, _ = CommandKind.again(self, job)  # the kind's uploads, not DocumentInput's
        params.pop("input", None)
        return params, [i.upload_id for i in job.job_inputs.filter(upload__kind="json")]

    def warnings(self, params: dict) -> list[str]:
        if params.get("af3_json"):
            return []  # AlphaFold 3's own input, run as written
        _, report = as_alphafold3(params["input"], "input", params["model_seeds"])
        return [*super().warnings(params), *report["warnings"]]

    def unavailable(self) -> str | None:
        if any(node.can_run("af3") for node in Node.objects.filter(enabled=True)):
            return None
        return (
            "No node of this portal runs AlphaFold 3: an operator sets PORTAL_AF3_COMMAND "
            "(how a node runs AlphaFold 3's run_alphafold.py) and PORTAL_AF3_MODEL_DIR (its "
            "weights) on a node (docs/kinds/af3.md)"
        )

    def gpu_memory(self, params: dict, inputs: list) -> int:
        if params.get("af3_json"):
            return af3_memory(af3_json.tokens(params["input"], mols_dir()))
        return af3_memory(tokens(params["input"]))

    def page_context(self, job) -> dict:
        context = {**super().page_context(job), "engine": "af3"}
        if job.params.get("data_pipeline"):
            context["single_sequence"] = []  # AlphaFold 3 searched what named no MSA
        return context

    def build(self, context: RunContext) -> Command:
        from jobs.models import Job

        job = Job.objects.get(pk=context.job_id)
        converted, report = alphafold3(job)
        json_path = context.scratch / "af3_input.json"
        json_path.write_text(json.dumps(converted, indent=1))
        types = {}
        for item in converted["sequences"]:
            kind, body = next(iter(item.items()))
            for chain in body["id"] if isinstance(body["id"], list) else [body["id"]]:
                types[chain] = kind
        request = {
            "command": shlex.split(settings.PORTAL_AF3_COMMAND),
            "json_path": str(json_path),
            "output_dir": str(context.scratch / "af3"),
            "model_dir": settings.PORTAL_AF3_MODEL_DIR,
            "db_dir": settings.PORTAL_AF3_DB_DIR or None,
            "data_pipeline": context.params["data_pipeline"],
            "num_diffusion_samples": context.params["num_diffusion_samples"],
            "num_recycles": context.params["num_recycles"],
            "out": str(context.out),
            "record": record_name(context.params, context.job_id),
            "chain_names": {af3: mine for mine, af3 in report["chain_ids"].items()},
            "chain_types": types,
            "provenance": {
                "engine": "alphafold3",
                "af3_version": settings.PORTAL_AF3_VERSION or "not stated (PORTAL_AF3_VERSION)",
                "command": settings.PORTAL_AF3_COMMAND,
                "model_dir": settings.PORTAL_AF3_MODEL_DIR,
                "model_dir_sha256": probe.af3_model_digest(
                    Path(settings.PORTAL_AF3_MODEL_DIR), settings.WORKDIR / "af3-digests"
                ),
                "model_seeds": converted["modelSeeds"],
                "num_diffusion_samples": context.params["num_diffusion_samples"],
                "num_recycles": context.params["num_recycles"],
                "data_pipeline": context.params["data_pipeline"],
                "export_warnings": report["warnings"],
            },
        }
        request_path = context.scratch / "af3_request.json"
        request_path.write_text(json.dumps(request))
        return Command([sys.executable, "-m", "predictions.af3_run", str(request_path)])
