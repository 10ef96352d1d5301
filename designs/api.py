"""A design campaign's candidates over the API: ranked by fitness, paginated, each with the
child job that predicted it. The campaign itself is a job like any (its endpoints are the
jobs')."""

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from designs.models import Candidate
from jobs.selectors import job_for
from portal.errors import PortalError


class CandidateSerializer(serializers.ModelSerializer):
    rank = serializers.SerializerMethodField(help_text="By fitness, 1 best; null until scored.")
    generation = serializers.SerializerMethodField(help_text="1 for the first.")
    state = serializers.CharField(source="job.state", help_text="Its prediction's state.")
    structure = serializers.SerializerMethodField(
        help_text="The page of its prediction, whose structure opens in Mol*."
    )

    class Meta:
        model = Candidate
        fields = [
            "rank",
            "generation",
            "index",
            "sequence",
            "job",
            "state",
            "pair_iptm",
            "binder_plddt",
            "developability",
            "constraints_met",
            "fitness",
            "error",
            "structure",
        ]

    def get_rank(self, candidate) -> int | None:
        return candidate.rank if candidate.fitness is not None else None

    def get_generation(self, candidate) -> int:
        return candidate.generation + 1

    def get_structure(self, candidate) -> str | None:
        return f"/jobs/{candidate.job_id}/" if candidate.fitness is not None else None


def ranked(campaign) -> "list[Candidate]":
    """A campaign's candidates, best first (the unscored after, in their order)."""
    order = [F("fitness").desc(nulls_last=True), "generation", "index"]
    return (
        Candidate.objects.filter(campaign=campaign)
        .select_related("job")
        .annotate(rank=Window(RowNumber(), order_by=order))
        .order_by(*order)
    )


class CandidateListView(generics.ListAPIView):
    serializer_class = CandidateSerializer
    queryset = Candidate.objects.none()  # the schema's model; requests get `get_queryset`

    @extend_schema(summary="A design campaign's candidates, ranked by fitness")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        campaign = job_for(self.request.user, self.kwargs["pk"])
        if campaign.kind != "design":
            raise PortalError(
                f"Job {campaign.pk} is of the kind {campaign.kind}; only a design campaign has "
                "candidates.",
                code="not_a_campaign",
                status_code=404,
            )
        return ranked(campaign)
