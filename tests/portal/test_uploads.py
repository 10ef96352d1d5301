import hashlib
import os

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from portal.uploads.models import Upload

pytestmark = [pytest.mark.django_db, pytest.mark.database]

FASTA = (
    b">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha\n"
    b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n>b\nACDEFGHIKL\n"
)


def upload(client, project_id, name, data):
    return client.post(
        "/api/v1/uploads/",
        {"project": project_id, "file": SimpleUploadedFile(name, data)},
        format="multipart",
    )


def stored_files():
    found = []
    for root in [settings.WORKDIR / "files", settings.WORKDIR / "tmp"]:
        for dirpath, _, names in os.walk(root):
            found += [os.path.join(dirpath, n) for n in names]
    return sorted(found)


def test_an_upload_answers_its_digest_and_kind(project, alice, api):
    response = upload(api(alice), project.pk, "hb.fasta", FASTA)
    assert response.status_code == 201
    body = response.json()
    assert body["sha256"] == hashlib.sha256(FASTA).hexdigest()
    assert body["kind"] == "fasta"
    assert body["size"] == len(FASTA)
    assert body["name"] == "hb.fasta"
    assert set(body) == {"id", "project", "name", "kind", "size", "sha256", "created_at"}


def test_the_same_bytes_twice_give_the_same_upload_and_one_stored_copy(project, alice, api):
    first = upload(api(alice), project.pk, "hb.fasta", FASTA)
    files_after_first = stored_files()
    second = upload(api(alice), project.pk, "renamed.fasta", FASTA)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert stored_files() == files_after_first
    assert len(files_after_first) == 1
    assert Upload.objects.count() == 1


def test_the_same_bytes_in_two_projects_are_two_uploads_of_one_stored_copy(project, alice, api):
    other = api(alice).post("/api/v1/projects/", {"name": "Other"}, format="json").json()["id"]
    a = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    b = upload(api(alice), other, "hb.fasta", FASTA)
    assert b.status_code == 201 and b.json()["id"] != a["id"]
    assert len(stored_files()) == 1


def test_a_script_asks_whether_bytes_are_there_before_sending_them(project, alice, api):
    digest = hashlib.sha256(FASTA).hexdigest()
    url = f"/api/v1/uploads/?project={project.pk}&sha256={digest}"
    assert api(alice).get(url).json()["results"] == []
    made = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    assert [u["id"] for u in api(alice).get(url).json()["results"]] == [made["id"]]
    assert api(alice).get(f"/api/v1/uploads/?project={project.pk}&sha256=xyz").status_code == 400


def test_the_content_comes_back_byte_for_byte(project, alice, bob, api):
    made = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    response = api(bob).get(f"/api/v1/uploads/{made['id']}/content")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == FASTA
    assert 'filename="hb.fasta"' in response["Content-Disposition"]


@pytest.mark.parametrize(
    "name, data, detail",
    [
        ("bad.fasta", b">a\nACDE\n>b\nAC1DE\n", "Line 4: '1' is not a residue letter."),
        ("nohead.fasta", b"ACDEFG\n", "sequence before the first header"),
        ("empty.fasta", b"", "The file is empty."),
        ("binary.fasta", bytes(range(256)) * 4, "binary file"),
        ("table.csv", b"MKTAYIAKQR,0.5\nMKLV,1.5\n", "The first row looks like data"),
        ("table.csv", b"sequence,label\n", "no rows of data"),
        ("ragged.tsv", b"a\tb\n1\t2\t3\n", "Row 2 has 3 fields"),
        ("input.yaml", b"sequences: [\n", "does not parse"),
        ("notes.docx", b"PK\x03\x04 zipped", "Cannot tell what kind of file"),
        ("model.pdb", b"REMARK nothing here\n", "no ATOM or HETATM records"),
    ],
)
def test_a_bad_file_gets_400_saying_what_is_wrong_and_leaves_nothing(
    project, alice, api, name, data, detail
):
    response = upload(api(alice), project.pk, name, data)
    assert response.status_code == 400
    assert response.json()["code"] == "upload_invalid"
    assert detail in response.json()["detail"]
    assert stored_files() == []
    assert Upload.objects.count() == 0


@override_settings(PORTAL_MAX_UPLOAD_BYTES=1000)
def test_an_upload_over_the_limit_gets_413_and_leaves_nothing(project, alice, api):
    data = b">a\n" + b"ACDEFGHIKL\n" * 200
    response = upload(api(alice), project.pk, "big.fasta", data)
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"
    assert stored_files() == []


def test_a_name_that_could_escape_a_directory_is_neutralised(project, alice, api):
    response = upload(api(alice), project.pk, "../../etc/passwd.fasta", FASTA)
    assert response.json()["name"] == "passwd.fasta"
    response = upload(api(alice), project.pk, "..\\..\\x\\.hidden.fasta", FASTA + b">c\nK\n")
    assert response.json()["name"] == "hidden.fasta"


def test_an_outsider_gets_404_for_upload_and_content(project, alice, charlie, api):
    made = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    assert api(charlie).get(f"/api/v1/uploads/{made['id']}/").status_code == 404
    assert api(charlie).get(f"/api/v1/uploads/{made['id']}/content").status_code == 404
    assert api(charlie).get("/api/v1/uploads/").json()["results"] == []
    assert upload(api(charlie), project.pk, "x.fasta", FASTA + b">z\nK\n").status_code == 404


def test_a_viewer_cannot_upload_or_delete(project, alice, bob, api):
    response = upload(api(bob), project.pk, "hb.fasta", FASTA)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert stored_files() == []
    made = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    assert api(bob).delete(f"/api/v1/uploads/{made['id']}/").status_code == 403


def test_deleting_an_upload_keeps_bytes_another_project_still_holds(project, alice, erin, api):
    other = api(alice).post("/api/v1/projects/", {"name": "Other"}, format="json").json()["id"]
    mine = upload(api(alice), project.pk, "hb.fasta", FASTA).json()
    upload(api(alice), other, "hb.fasta", FASTA)
    assert api(erin).delete(f"/api/v1/uploads/{mine['id']}/").status_code == 204
    assert len(stored_files()) == 1
    theirs = Upload.objects.get()
    assert api(alice).delete(f"/api/v1/uploads/{theirs.pk}/").status_code == 204
    assert stored_files() == []


def test_a_request_without_a_file_is_a_clear_error(project, alice, api):
    response = api(alice).post("/api/v1/uploads/", {"project": project.pk}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["detail"]


def test_an_upload_needs_a_project(alice, api):
    response = api(alice).post(
        "/api/v1/uploads/", {"file": SimpleUploadedFile("a.fasta", FASTA)}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["fields"]["project"]


def test_the_upload_page_offers_a_progress_bar_to_editors_only(project, alice, bob, client):
    client.force_login(alice)
    page = client.get(f"/projects/{project.pk}/uploads/new/")
    assert b"<progress" in page.content and b"upload.js" in page.content
    client.force_login(bob)
    assert client.get(f"/projects/{project.pk}/uploads/new/").status_code == 403


def test_a_signed_in_browser_uploads_with_its_session_and_csrf_token(project, alice):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get(f"/projects/{project.pk}/uploads/new/")
    token = page.cookies["csrftoken"].value
    refused = browser.post(
        "/api/v1/uploads/", {"project": project.pk, "file": SimpleUploadedFile("a.fasta", FASTA)}
    )
    assert refused.status_code == 403
    accepted = browser.post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile("a.fasta", FASTA)},
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201
    assert accepted.json()["sha256"] == hashlib.sha256(FASTA).hexdigest()
