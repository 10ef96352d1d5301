"""The jobs API: submitting, reading, cancelling, priorities, events, artifacts."""

import io
import json
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.lifecycle import events_append, transition
from jobs.models import Artifact, Job, State
from jobs.services import job_start
from portal.uploads.models import Upload

pytestmark = [pytest.mark.django_db, pytest.mark.database]


def submit(client, project, **body):
    return client.post(
        "/api/v1/jobs/", {"project": project.pk, "kind": "check", **body}, format="json"
    )


def test_a_job_is_queued_with_its_submission_recorded(project, alice, api):
    response = submit(api(alice), project, name="probe", params={"sleep": 1})
    assert response.status_code == 201
    body = response.json()
    assert (body["state"], body["kind"], body["name"], body["priority"]) == (
        "queued",
        "check",
        "probe",
        "normal",
    )
    detail = api(alice).get(f"/api/v1/jobs/{body['id']}/").json()
    assert [(t["from_state"], t["to_state"], t["reason"]) for t in detail["transitions"]] == [
        ("pending", "queued", "submitted by alice")
    ]


def test_the_same_work_twice_gives_the_queued_job_back_unless_forced(project, alice, api):
    first = submit(api(alice), project, params={"sleep": 5}).json()
    again = submit(api(alice), project, params={"sleep": 5})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = submit(api(alice), project, params={"sleep": 6})
    assert other.status_code == 201
    forced = submit(api(alice), project, params={"sleep": 5}, force=True)
    assert forced.status_code == 201 and forced.json()["id"] != first["id"]


def test_a_finished_job_does_not_count_as_the_same_work(project, alice, api):
    first = submit(api(alice), project).json()
    transition(Job.objects.get(pk=first["id"]), State.CANCELLED, reason="test")
    assert submit(api(alice), project).status_code == 201


@pytest.mark.parametrize(
    "body, code, detail",
    [
        ({"kind": "fold-everything"}, "kind_unknown", "Unknown job kind 'fold-everything'"),
        (
            {"params": {"sleep": 4000}},
            "params_invalid",
            "params.sleep: Ensure this value is less than or equal to 3600.",
        ),
        ({"params": {"sleep": "soon"}}, "params_invalid", "params.sleep: A valid number"),
        ({"params": {"wait": 1}}, "params_invalid", "params.wait: Unknown parameter; check takes"),
        ({"priority": "urgent"}, "invalid", "priority"),
        ({"time_limit": 10**9}, "time_limit_invalid", "time limit"),
        ({"params": [1, 2]}, "params_invalid", "JSON object"),
    ],
)
def test_bad_submissions_get_400_saying_why(project, alice, api, body, code, detail):
    response = submit(api(alice), project, **body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert detail in response.json()["detail"]
    assert Job.objects.count() == 0


def test_inputs_must_be_uploads_of_the_same_project(project, alice, charlie, api):
    theirs = api(charlie).post("/api/v1/projects/", {"name": "C"}, format="json").json()["id"]
    upload = (
        api(charlie)
        .post(
            "/api/v1/uploads/",
            {"project": theirs, "file": SimpleUploadedFile("a.fasta", b">a\nMK\n")},
            format="multipart",
        )
        .json()
    )
    response = submit(api(alice), project, kind="sleep", inputs=[upload["id"]])
    assert response.status_code == 400
    assert "No upload" in response.json()["detail"]


def test_a_kind_refuses_inputs_it_does_not_take(project, alice, api):
    upload = (
        api(alice)
        .post(
            "/api/v1/uploads/",
            {"project": project.pk, "file": SimpleUploadedFile("a.fasta", b">a\nMK\n")},
            format="multipart",
        )
        .json()
    )
    response = submit(api(alice), project, inputs=[upload["id"]])
    assert response.status_code == 400
    assert response.json()["code"] == "inputs_invalid"


def test_an_input_of_a_waiting_job_cannot_be_deleted(project, alice, api):
    upload = (
        api(alice)
        .post(
            "/api/v1/uploads/",
            {"project": project.pk, "file": SimpleUploadedFile("a.fasta", b">a\nMK\n")},
            format="multipart",
        )
        .json()
    )
    assert submit(api(alice), project, kind="sleep", inputs=[upload["id"]]).status_code == 201
    response = api(alice).delete(f"/api/v1/uploads/{upload['id']}/")
    assert response.status_code == 409
    assert response.json()["code"] == "upload_in_use"
    assert Upload.objects.filter(pk=upload["id"]).exists()


def test_viewers_read_but_do_not_submit_or_cancel_and_outsiders_see_nothing(
    project, alice, bob, charlie, api
):
    job = submit(api(alice), project).json()
    assert submit(api(bob), project).status_code == 403
    assert api(bob).get(f"/api/v1/jobs/{job['id']}/").status_code == 200
    assert api(bob).post(f"/api/v1/jobs/{job['id']}/cancel/").status_code == 403
    for path in ["", "events/", "artifacts/", "archive/", "artifacts/x.json"]:
        assert api(charlie).get(f"/api/v1/jobs/{job['id']}/{path}").status_code == 404
    assert api(charlie).post(f"/api/v1/jobs/{job['id']}/cancel/").status_code == 404
    assert submit(api(charlie), project).status_code == 404
    assert api(charlie).get("/api/v1/jobs/").json()["results"] == []


def test_jobs_are_listed_with_filters(project, alice, api):
    a = submit(api(alice), project, params={"sleep": 1}).json()
    b = submit(api(alice), project, kind="sleep").json()
    transition(Job.objects.get(pk=b["id"]), State.CANCELLED, reason="test")
    listed = lambda q: [j["id"] for j in api(alice).get(f"/api/v1/jobs/?{q}").json()["results"]]  # noqa: E731
    assert listed(f"project={project.pk}") == [b["id"], a["id"]]
    assert listed("state=queued") == [a["id"]]
    assert listed("kind=sleep") == [b["id"]]
    assert api(alice).get("/api/v1/jobs/?state=lost").status_code == 400


def test_cancelling_a_waiting_job_cancels_it_at_once(project, alice, erin, api):
    job = submit(api(alice), project).json()
    response = api(erin).post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert response.json()["state"] == "cancelled"
    again = api(erin).post(f"/api/v1/jobs/{job['id']}/cancel/")
    assert again.status_code == 400 and again.json()["code"] == "job_not_cancellable"


def test_the_priority_of_a_waiting_job_changes(project, alice, api):
    job = submit(api(alice), project).json()
    response = api(alice).post(
        f"/api/v1/jobs/{job['id']}/priority/", {"priority": "high"}, format="json"
    )
    assert response.json()["priority"] == "high"
    transition(Job.objects.get(pk=job["id"]), State.CANCELLED, reason="test")
    refused = api(alice).post(
        f"/api/v1/jobs/{job['id']}/priority/", {"priority": "low"}, format="json"
    )
    assert refused.status_code == 400 and refused.json()["code"] == "job_not_waiting"


def running_job(project, alice, api, make_node):
    """A job started on a node, as its runner would start it."""
    node = make_node()
    job = Job.objects.get(pk=submit(api(alice), project).json()["id"])
    Job.objects.filter(pk=job.pk).update(node=node, slot=0, placement=1)
    job_start(job_id=job.pk, placement=1, node_name=node.name, boot_id="b")
    return Job.objects.get(pk=job.pk)


def test_events_come_after_an_id_oldest_first_in_pages(project, alice, api, make_node):
    job = running_job(project, alice, api, make_node)
    events_append(
        job_id=job.pk,
        placement=1,
        events=[{"type": "log", "line": f"line {n}"} for n in range(30)]
        + [{"type": "metric", "step": 1, "name": "loss", "value": 0.5}]
        + [{"type": "progress", "percent": 40, "message": "epoch 1"}],
    )
    page = api(alice).get(f"/api/v1/jobs/{job.pk}/events/?after=0&limit=10").json()
    assert [e["id"] for e in page["results"]] == list(range(1, 11))
    assert page["more"] and page["last_id"] == 10
    rest = api(alice).get(f"/api/v1/jobs/{job.pk}/events/?after=10").json()
    assert not rest["more"]
    ids = [e["id"] for e in rest["results"]]
    assert ids == list(range(11, ids[-1] + 1))
    assert rest["results"][-2] == {
        **rest["results"][-2],
        "type": "metric",
        "name": "loss",
        "value": 0.5,
    }
    assert rest["results"][-1]["type"] == "progress"
    detail = api(alice).get(f"/api/v1/jobs/{job.pk}/").json()
    assert detail["progress"] == 40 and detail["metrics"] == {"loss": {"step": 1, "value": 0.5}}
    assert api(alice).get(f"/api/v1/jobs/{job.pk}/events/?after=x").status_code == 400


def test_artifacts_download_singly_and_as_a_zip_with_a_manifest_and_the_log(
    project, alice, api, make_node
):
    at_start = {"cuda": {"ready": True, "version": "12.4"}}
    job = running_job(project, alice, api, lambda: make_node(engines=at_start))
    job.node.engines = {"boltz": {"ready": True, "version": "9.9 (upgraded since)"}}
    job.node.save()
    said = ["loading the model", "ünïcode survives", "done"]
    events_append(
        job_id=job.pk, placement=1, events=[{"type": "log", "line": line} for line in said]
    )
    for name, data in [("check.json", b'{"ok": true}'), ("samples/model_0.cif", b"data_x\n")]:
        key = default_storage.save(f"artifacts/{job.pk}/1/{name}", ContentFile(data))
        import hashlib

        Artifact.objects.create(
            job=job,
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            placement=1,
        )
    listed = api(alice).get(f"/api/v1/jobs/{job.pk}/artifacts/").json()
    assert [a["name"] for a in listed] == ["check.json", "samples/model_0.cif"]
    one = api(alice).get(f"/api/v1/jobs/{job.pk}/artifacts/samples/model_0.cif")
    assert b"".join(one.streaming_content) == b"data_x\n"
    archive = api(alice).get(f"/api/v1/jobs/{job.pk}/archive/")
    assert archive["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
        assert sorted(zf.namelist()) == [
            "check.json",
            "log.txt",
            "manifest.json",
            "samples/model_0.cif",
        ]
        manifest = json.loads(zf.read("manifest.json"))
        assert zf.read("check.json") == b'{"ok": true}'
        assert zf.read("log.txt").decode().splitlines() == said
    log = api(alice).get(f"/api/v1/jobs/{job.pk}/log/")
    assert log["Content-Type"] == "text/plain; charset=utf-8"
    assert b"".join(log.streaming_content).decode().splitlines() == said
    assert manifest["job"]["params"] == {} and manifest["ran_on"]["node"] == "n1"
    # The engines the node had as the job started, whatever it reports now.
    assert manifest["ran_on"]["engines"] == at_start
    assert {a["name"] for a in manifest["artifacts"]} == {"check.json", "samples/model_0.cif"}
    assert api(alice).get(f"/api/v1/jobs/{job.pk}/artifacts/nothing").status_code == 404


def test_a_job_too_big_for_every_gpu_is_refused_at_submission(project, alice, api, make_node):
    from tests.jobs.conftest import fake_gpu

    make_node(gpus=[fake_gpu(memory=24 * 2**30)])
    # The sleep kind estimates `gib` GiB of GPU memory.
    response = submit(api(alice), project, kind="sleep", params={"gib": 40})
    assert response.status_code == 400
    assert response.json()["code"] == "job_too_big"
    assert "24.0 GiB" in response.json()["detail"]
    assert submit(api(alice), project, kind="sleep", params={"gib": 20}).status_code == 201
