"""A prediction's API beside the jobs' own: its PAE for a heatmap, and its input as AlphaFold 3
JSON."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs.selectors import job_for
from predictions.af3 import Af3Kind
from predictions.af3 import alphafold3 as af3_input
from predictions.kinds import PredictKind
from predictions.results import pae_bytes, plddt_values, read_json, record_name


class PaeQuery(serializers.Serializer):  # a sample, for the PAE and the pLDDT
    sample = serializers.IntegerField(min_value=0, max_value=99, default=0)


class SampleFileView(APIView):
    """One sample's file of a prediction (`<prefix>_<record>_model_<k>.npz`), read for a page,
    with the chains in token order."""

    prefix = ""
    what = ""

    def read(self, artifact) -> dict:
        raise NotImplementedError

    def get(self, request, pk):
        job = job_for(request.user, pk)
        query = PaeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        sample = query.validated_data["sample"]
        name = f"{self.prefix}_{record_name(job.params, job.pk)}_model_{sample}.npz"
        artifact = job.artifacts.filter(name=name).first()
        chains = job.artifacts.filter(name="chains.json").first()
        if artifact is None or chains is None:
            raise NotFound(f"No such sample's {self.what}.")
        return Response({"sample": sample, **self.read(artifact), **read_json(chains)})


@extend_schema(
    parameters=[PaeQuery],
    responses={200: OpenApiTypes.OBJECT},
    summary="A prediction sample's PAE, for a heatmap",
)
class PaeView(SampleFileView):
    """A prediction sample's predicted aligned error, compact enough for a page to draw a
    heatmap of a large complex: each value as one byte (0 to 255 over 0 to `max` Å)."""

    prefix, what = "pae", "PAE"

    def read(self, artifact) -> dict:
        return pae_bytes(artifact)


@extend_schema(
    parameters=[PaeQuery],
    responses={200: OpenApiTypes.OBJECT},
    summary="A prediction sample's pLDDT per token, for a plot",
)
class PlddtView(SampleFileView):
    """A prediction sample's pLDDT per token (a residue, or a ligand's atom), 0 to 100, with
    the chains in token order: what a page plots per chain."""

    prefix, what = "plddt", "pLDDT"

    def read(self, artifact) -> dict:
        return {"values": plddt_values(artifact)}


def alphafold3(job) -> tuple[dict, dict]:
    """A prediction's (or an af3 job's) input as AlphaFold 3 JSON and its report."""
    if job.kind not in (PredictKind.name, Af3Kind.name):
        raise NotFound("Only a prediction has an AlphaFold 3 input.")
    return af3_input(job)


class AlphaFold3View(APIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="A prediction's input as AlphaFold 3 JSON (dialect alphafold3, version 2)",
    )
    def get(self, request, pk):
        job = job_for(request.user, pk)
        converted, _ = alphafold3(job)
        response = Response(converted)
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-af3.json"'
        return response


class AlphaFold3Report(serializers.Serializer):
    chain_ids = serializers.DictField(
        child=serializers.CharField(), help_text="Each chain's id and its AlphaFold 3 id."
    )
    warnings = serializers.ListField(
        child=serializers.CharField(), help_text="What AlphaFold 3's input has no form for."
    )


class AlphaFold3ReportView(APIView):
    @extend_schema(
        responses=AlphaFold3Report,
        summary="What a prediction's AlphaFold 3 JSON maps (chain ids) and leaves out",
    )
    def get(self, request, pk):
        _, report = alphafold3(job_for(request.user, pk))
        return Response(report)
