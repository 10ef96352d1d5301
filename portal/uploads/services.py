"""State changes of uploads."""

import logging

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError

from portal.errors import PortalError
from portal.uploads.models import Upload, blob_key

log = logging.getLogger(__name__)


def upload_create(*, project, by, file) -> tuple[Upload, bool]:
    """Store a file the upload handler has hashed and checked; returns (upload, created).

    The same bytes already in the project give back that upload and store nothing new.
    """
    existing = Upload.objects.filter(project=project, sha256=file.sha256).first()
    if existing is not None:
        return existing, False
    key = blob_key(file.sha256)
    # Another project may hold the same bytes: then they are stored already. Writing the same
    # key twice at once is harmless, as both writers hold the same bytes.
    if not default_storage.exists(key):
        stored = default_storage.save(key, file)
        assert stored == key, f"storage renamed {key} to {stored}"
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                project=project,
                name=file.name,
                kind=file.kind,
                size=file.size,
                sha256=file.sha256,
                created_by=by,
            )
    except IntegrityError:
        # The same bytes arrived twice at once; the first to commit wins.
        return Upload.objects.get(project=project, sha256=file.sha256), False
    return upload, True


def upload_delete(*, upload: Upload) -> None:
    """Remove an upload; its bytes go too unless another upload holds the same digest."""
    sha256 = upload.sha256
    try:
        upload.delete()
    except (ProtectedError, RestrictedError):
        raise PortalError(
            "This upload is an input of a job; it stays as long as that job does.",
            code="upload_in_use",
            status_code=409,
        ) from None
    if not Upload.objects.filter(sha256=sha256).exists():
        try:
            default_storage.delete(blob_key(sha256))
        except OSError:
            log.warning("could not delete blob %s; it stays until the next clean-up", sha256)


def upload_open(upload: Upload):
    return default_storage.open(blob_key(upload.sha256), "rb")
