"""`Portal.download`: one artifact or the ZIP, each artifact checked against the listed SHA-256."""

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from portal_client import DigestMismatch, Portal

from jobs.models import Artifact
from jobs.services import job_submit

pytestmark = pytest.mark.slow


@pytest.fixture
def finished_files(project, alice):
    """A job with two artifacts in storage (no node runs it: the files are what matters)."""
    job, _ = job_submit(project=project, by=alice, kind="sleep", params={}, inputs=[])
    files = {"check.json": b'{"ok": true}', "samples/model_0.cif": os.urandom(300_000)}
    for name, data in files.items():
        key = default_storage.save(f"artifacts/{job.pk}/1/{name}", ContentFile(data))
        Artifact.objects.create(
            job=job,
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            placement=1,
        )
    return job, files


def flip_a_byte(job, name):
    """The stored bytes change behind the listing's back (a disk or a line that corrupts)."""
    path = Path(default_storage.path(Artifact.objects.get(job=job, name=name).storage_key))
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))


def test_an_artifact_and_the_archive_download_checked(
    portal_server, finished_files, alice_key, tmp_path
):
    job, files = finished_files
    portal = Portal(portal_server.url, alice_key)

    one = portal.download(job.pk, tmp_path, name="samples/model_0.cif", progress=False)
    assert one == tmp_path / "model_0.cif" and one.read_bytes() == files["samples/model_0.cif"]

    # A directory not there yet, written with a trailing slash, is made and written into.
    into = portal.download(job.pk, f"{tmp_path}/new/", name="samples/model_0.cif", progress=False)
    assert into == tmp_path / "new" / "model_0.cif" and into.read_bytes() == one.read_bytes()
    archive = portal.download(job.pk, tmp_path / "all.zip", progress=False)
    with zipfile.ZipFile(archive) as zf:
        assert {name: zf.read(name) for name in files} == files
        assert "manifest.json" in zf.namelist()


def test_bytes_that_differ_from_the_listing_raise_and_leave_nothing(
    portal_server, finished_files, alice_key, tmp_path
):
    job, _ = finished_files
    portal = Portal(portal_server.url, alice_key)
    flip_a_byte(job, "samples/model_0.cif")

    with pytest.raises(DigestMismatch, match="model_0.cif"):
        portal.download(job.pk, tmp_path / "one.cif", name="samples/model_0.cif", progress=False)
    with pytest.raises(DigestMismatch, match="model_0.cif"):
        portal.download(job.pk, tmp_path / "all.zip", progress=False)
    assert list(tmp_path.iterdir()) == []
    # The other artifact is untouched, and still comes.
    assert portal.download(job.pk, tmp_path, name="check.json", progress=False).exists()
