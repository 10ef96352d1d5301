"""`Portal.upload`: the bytes go once; a file the project has already is found, not sent."""

import hashlib
import random

import pytest
from portal_client import Portal, PortalError

pytestmark = pytest.mark.slow


def fasta(path, size: int):
    rng = random.Random(7)
    with open(path, "w") as f:
        number = 0
        while f.tell() < size:
            f.write(f">seq{number}\n{''.join(rng.choices('ACDEFGHIKLMNPQRSTVWY', k=60))}\n")
            number += 1
    return path


def test_a_file_already_there_is_found_and_its_bytes_are_not_sent_again(
    portal_server, project, alice_key, proxy_to, tmp_path
):
    proxy = proxy_to(portal_server.url)
    portal = Portal(proxy.url, alice_key)
    path = fasta(tmp_path / "big.fasta", 2 * 2**20)
    size = path.stat().st_size

    first = portal.upload(project.pk, path, progress=False)
    assert first["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first["size"] == size and first["kind"] == "fasta"
    assert proxy.sent >= size

    proxy.reset()
    again = portal.upload(project.pk, path, progress=False)
    assert again["id"] == first["id"]
    assert proxy.sent < size // 100  # a look-up by digest, not the file


def test_a_refused_upload_raises_the_portals_code(portal_server, project, alice_key, tmp_path):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nMK1TAY\n")
    with pytest.raises(PortalError) as refused:
        Portal(portal_server.url, alice_key).upload(project.pk, bad, progress=False)
    assert refused.value.code == "upload_invalid" and refused.value.status == 400
    assert "residue" in refused.value.detail
