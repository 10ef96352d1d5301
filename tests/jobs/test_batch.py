"""Batch submission (all checked first, all or none created) and Idempotency-Key on the
create endpoints (the same key and body give the first answer and create nothing)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job
from portal.projects.models import Project
from portal.uploads.models import Upload

pytestmark = [pytest.mark.django_db, pytest.mark.database]


def batch(project, count=200, bad=None):
    items = [
        {"project": project.pk, "kind": "sleep", "params": {"n": i}, "force": True}
        for i in range(count)
    ]
    if bad is not None:
        items[bad]["params"] = {"seconds": -1}
    return {"jobs": items}


def test_a_batch_is_created_whole_or_not_at_all_and_a_key_makes_it_once(api, alice, project):
    client = api(alice)
    refused = client.post("/api/v1/jobs/batch/", batch(project, bad=17), format="json")
    assert refused.status_code == 400
    body = refused.json()
    assert body["code"] == "batch_invalid"
    assert "seconds" in body["fields"]["jobs"]["17"]["params"]
    assert "jobs.17.params.seconds" in body["detail"]
    assert not Job.objects.exists()

    fixed = batch(project)
    created = client.post(
        "/api/v1/jobs/batch/", fixed, format="json", HTTP_IDEMPOTENCY_KEY="run-42"
    )
    assert created.status_code == 201, created.content
    ids = [job["id"] for job in created.json()["results"]]
    assert len(ids) == 200 and Job.objects.count() == 200

    again = client.post("/api/v1/jobs/batch/", fixed, format="json", HTTP_IDEMPOTENCY_KEY="run-42")
    assert again.status_code == 201
    assert [job["id"] for job in again.json()["results"]] == ids
    assert Job.objects.count() == 200  # `force` would have made 200 more without the key

    fixed["jobs"][0]["params"] = {"n": "changed"}
    conflict = client.post(
        "/api/v1/jobs/batch/", fixed, format="json", HTTP_IDEMPOTENCY_KEY="run-42"
    )
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 200


def test_an_item_that_names_what_is_not_there_is_refused_by_index(api, alice, bob, project):
    items = batch(project, count=3)
    items["jobs"][1]["kind"] = "nonesuch"
    items["jobs"][2]["project"] = 10**12
    refused = api(alice).post("/api/v1/jobs/batch/", items, format="json")
    assert refused.status_code == 400
    jobs = refused.json()["fields"]["jobs"]
    assert set(jobs) == {"1", "2"} and "kind_unknown" in jobs["1"]
    assert "not_found" in jobs["2"]
    # A viewer cannot submit in the project: the item says so.
    viewer = api(bob).post("/api/v1/jobs/batch/", batch(project, count=1), format="json")
    assert viewer.status_code == 400 and "permission_denied" in viewer.json()["fields"]["jobs"]["0"]
    too_many = api(alice).post("/api/v1/jobs/batch/", batch(project, count=1001), format="json")
    assert too_many.status_code == 400
    assert not Job.objects.exists()


def test_every_create_endpoint_honours_an_idempotency_key(api, alice, erin, project):
    client = api(alice)
    job = {"project": project.pk, "kind": "sleep", "params": {"n": 1}, "force": True}
    first = client.post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="a")
    second = client.post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"] and Job.objects.count() == 1
    # Another user's same key is theirs alone; a key of the wrong shape is a 400.
    hers = api(erin).post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="a")
    assert hers.status_code == 201 and hers.json()["id"] != first.json()["id"]
    bad = client.post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert bad.status_code == 400 and bad.json()["code"] == "idempotency_key_invalid"

    made = [
        client.post(
            "/api/v1/projects/", {"name": "Screens"}, format="json", HTTP_IDEMPOTENCY_KEY="p"
        )
        for _ in range(2)
    ]
    assert made[0].json()["id"] == made[1].json()["id"]
    assert Project.objects.filter(name="Screens").count() == 1

    def upload():
        return client.post(
            "/api/v1/uploads/",
            {"project": project.pk, "file": SimpleUploadedFile("a.fasta", b">a\nMKTAY\n")},
            format="multipart",
            HTTP_IDEMPOTENCY_KEY="u",
        )

    assert upload().json()["id"] == upload().json()["id"] and Upload.objects.count() == 1
    # A refused request keeps no answer: the key may be used again once it is right.
    job["params"] = {"seconds": -1}
    assert (
        client.post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="b").status_code
        == 400
    )
    job["params"] = {"n": 2}
    assert (
        client.post("/api/v1/jobs/", job, format="json", HTTP_IDEMPOTENCY_KEY="b").status_code
        == 201
    )
