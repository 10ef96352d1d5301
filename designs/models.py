"""A design campaign is a job of kind `design` (designs/kinds.py); its candidates are rows
here, each predicted by a child `predict` job of the campaign."""

from django.db import models

from jobs.models import Job


class Candidate(models.Model):
    """One binder the search proposed, in the generation it was born in, and its scores once
    its prediction ended. A sequence is proposed once per campaign, so none is predicted twice;
    an elite carried into a later generation keeps its first row."""

    campaign = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="candidates")
    generation = models.PositiveSmallIntegerField()
    index = models.PositiveSmallIntegerField()  # within its generation
    # One-letter residues; for a glycopeptide, the residue bearing the sugar in lower case.
    sequence = models.CharField(max_length=200)
    job = models.OneToOneField(
        Job, on_delete=models.CASCADE, related_name="candidate", null=True, blank=True
    )
    pair_iptm = models.FloatField(null=True, blank=True)
    binder_plddt = models.FloatField(null=True, blank=True)
    residue_plddt = models.JSONField(default=list, blank=True)
    developability = models.FloatField(null=True, blank=True)
    fitness = models.FloatField(null=True, blank=True)
    # The fraction of the campaign's distance constraints its structure meets (1 without any).
    constraints_met = models.FloatField(null=True, blank=True)
    # Set when its prediction ended: scored (fitness set) or failed (error set).
    scored_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["campaign", "generation", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "generation", "index"], name="one_candidate_per_place"
            ),
            models.UniqueConstraint(
                fields=["campaign", "sequence"], name="one_candidate_per_sequence"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "fitness"])]

    def __str__(self):
        return f"{self.generation}.{self.index} {self.sequence}"

    @property
    def failed(self) -> bool:
        return self.scored_at is not None and self.fitness is None
