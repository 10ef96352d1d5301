from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.projects.models import Project
from portal.uploads.formats import KINDS


def blob_key(sha256: str) -> str:
    """Where bytes with this digest live in storage; one copy however often uploaded."""
    return f"blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class Upload(models.Model):
    """A file in a project, stored once by its SHA-256."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="uploads")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=10, choices=[(k, k) for k in KINDS])
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The same bytes twice in a project are one upload.
            models.UniqueConstraint(fields=["project", "sha256"], name="one_upload_per_digest")
        ]
        indexes = [models.Index(fields=["sha256"])]

    def __str__(self):
        return self.name

    @property
    def storage_key(self) -> str:
        return blob_key(self.sha256)
