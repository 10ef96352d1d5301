"""A screen's ligands over the API: ranked by predicted affinity (log10 IC50 in µM, lowest
first), paginated, each with the child job that scored it. The screen itself is a job like any
(its endpoints are the jobs')."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from jobs.selectors import job_for
from portal.errors import PortalError
from screens.models import Ligand
from screens.screening import ranked


class LigandSerializer(serializers.ModelSerializer):
    rank = serializers.SerializerMethodField(help_text="1 binds most strongly; null until scored.")
    state = serializers.SerializerMethodField(help_text="Its child job's state, or `waiting`.")
    ic50_um = serializers.SerializerMethodField(help_text="The predicted IC50 in µM.")
    structure = serializers.SerializerMethodField(
        help_text="The page of its child job, whose complex opens in Mol*."
    )

    class Meta:
        model = Ligand
        fields = [
            "rank",
            "index",
            "name",
            "smiles",
            "job",
            "state",
            "affinity_pred_value",
            "ic50_um",
            "affinity_probability_binary",
            "iptm",
            "error",
            "structure",
        ]

    def get_rank(self, ligand) -> int | None:
        return ligand.rank if ligand.affinity_pred_value is not None else None

    def get_state(self, ligand) -> str:
        return (
            ligand.job.state
            if ligand.job is not None
            else ("failed" if ligand.error else "waiting")
        )

    def get_ic50_um(self, ligand) -> float | None:
        value = ligand.affinity_pred_value
        return None if value is None else 10**value

    def get_structure(self, ligand) -> str | None:
        scored = ligand.affinity_pred_value is not None and ligand.job_id
        return f"/jobs/{ligand.job_id}/" if scored else None


class LigandListView(generics.ListAPIView):
    serializer_class = LigandSerializer
    queryset = Ligand.objects.none()  # the schema's model; requests get `get_queryset`

    @extend_schema(summary="A screen's ligands, ranked by predicted affinity")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        screen = job_for(self.request.user, self.kwargs["pk"])
        if screen.kind != "screen":
            raise PortalError(
                f"Job {screen.pk} is of the kind {screen.kind}; only a screen has ligands.",
                code="not_a_screen",
                status_code=404,
            )
        return ranked(screen)
