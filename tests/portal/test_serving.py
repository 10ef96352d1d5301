"""Large uploads through the real server (Daphne, `manage.py serve`)."""

import hashlib
import os
import random

import pytest
from django.conf import settings

from portal.accounts.services import token_create
from portal.uploads.models import Upload
from tests.http import post_file

pytestmark = pytest.mark.slow


def memory_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


@pytest.fixture(scope="module")
def big_fasta(tmp_path_factory):
    """A 200 MB protein FASTA of short records, the shape of a UniProt download."""
    path = tmp_path_factory.mktemp("big") / "proteome.fasta"
    rng = random.Random(3)
    pool = bytes(rng.choice(b"ACDEFGHIKLMNPQRSTVWY") for _ in range(1 << 16))
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        size = number = 0
        while size < 200_000_000:
            length = rng.randint(50, 700)
            start = rng.randrange(len(pool) - length)
            seq = pool[start : start + length]
            record = b">sp|P%05d|PROT%d_HUMAN\n" % (number, number) + b"".join(
                seq[i : i + 60] + b"\n" for i in range(0, length, 60)
            )
            out.write(record)
            digest.update(record)
            size += len(record)
            number += 1
    return path, digest.hexdigest()


def blob_files():
    root = settings.WORKDIR / "files"
    return sorted(os.path.join(d, n) for d, _, names in os.walk(root) for n in names)


def test_a_200_mb_upload_is_hashed_in_bounded_memory_and_stored_once(
    portal_server, project, alice, big_fasta
):
    path, expected = big_fasta
    _, key = token_create(user=alice, name="bulk")
    # What the server loads as it starts (the kinds' parsers: torch among them) is not the
    # upload's doing.
    portal_server.wait_for(lambda: "job kinds warmed up" in portal_server.output(), "warm-up")
    before = memory_kb(portal_server.pid, "VmRSS")

    status, body = post_file(
        f"{portal_server.url}/api/v1/uploads/", key, {"project": project.pk}, path
    )

    assert status == 201, body
    assert body["sha256"] == expected
    assert body["size"] == os.path.getsize(path)
    growth_mb = (memory_kb(portal_server.pid, "VmHWM") - before) / 1024
    assert growth_mb < 100, f"the server grew by {growth_mb:.0f} MB"
    stored = blob_files()
    assert len(stored) == 1

    status, again = post_file(
        f"{portal_server.url}/api/v1/uploads/", key, {"project": project.pk}, path
    )
    assert status == 200
    assert again["id"] == body["id"]
    assert blob_files() == stored
    assert Upload.objects.count() == 1
    assert os.listdir(settings.WORKDIR / "tmp") == []


def test_a_bad_file_through_the_server_leaves_nothing(portal_server, project, alice, tmp_path):
    _, key = token_create(user=alice, name="bulk")
    path = tmp_path / "bad.fasta"
    path.write_bytes(b">ok\nACDEFG\n" * 100_000 + b">bad\nAC#DE\n")
    status, body = post_file(
        f"{portal_server.url}/api/v1/uploads/", key, {"project": project.pk}, path
    )
    assert status == 400
    assert body["detail"] == "Line 200002: '#' is not a residue letter."
    assert blob_files() == []
    assert os.listdir(settings.WORKDIR / "tmp") == []
