"""A virtual screen is a job of kind `screen` (screens/kinds.py); its ligands are rows here, each
scored by a child job of the screen (a co-folding `predict`, or an `affinity` on its pose)."""

from django.db import models

from jobs.models import Job


class Ligand(models.Model):
    """One ligand of a screen, in the order its file gave it, and its figures once its child
    job ended. A ligand gets its child once (the step that submits it saves both together), so
    none is scored twice."""

    screen = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="ligands")
    index = models.PositiveIntegerField()  # in the file, from 0
    name = models.CharField(max_length=200)
    smiles = models.TextField()
    # Poses mode: the ligand's pose (a molfile), and the upload made of it for its child.
    molblock = models.TextField(blank=True)
    job = models.OneToOneField(
        Job, on_delete=models.SET_NULL, related_name="ligand", null=True, blank=True
    )
    affinity_pred_value = models.FloatField(null=True, blank=True)  # log10 IC50, µM
    affinity_probability_binary = models.FloatField(null=True, blank=True)
    iptm = models.FloatField(null=True, blank=True)  # co-fold mode
    # Set when its child ended: scored (figures set) or failed (error set).
    scored_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["screen", "index"]
        constraints = [
            models.UniqueConstraint(fields=["screen", "index"], name="one_ligand_per_place")
        ]
        indexes = [models.Index(fields=["screen", "affinity_pred_value"])]

    def __str__(self):
        return f"{self.index} {self.name}"
