"""A bad dataset or bad parameters are refused when the job is submitted, saying why."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, State

pytestmark = pytest.mark.django_db

GOOD = "sequence,label\n" + "".join(
    f"MKV{'RGD' if n % 2 else 'AAA'}LLE,{'b' if n % 2 else 'n'}\n" for n in range(40)
)


def upload(api, user, project, name, text):
    response = api(user).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile(name, text.encode())},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def submit(api, user, project, upload_id, **params):
    return api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "train", "inputs": [upload_id], "params": params},
        format="json",
    )


@pytest.mark.parametrize(
    "name, text, params, code, detail",
    [
        (
            "d.csv",
            GOOD,
            {"label_column": "activity"},
            "dataset_invalid",
            "There is no column 'activity'; the file's columns are: sequence, label.",
        ),
        (
            "d.csv",
            "sequence,label\n" + "MKVLLE,b\n" * 40,
            {},
            "dataset_invalid",
            "Every row has the label 'b'; classification needs at least two classes.",
        ),
        (
            "d.csv",
            GOOD,
            {"task": "regression"},
            "dataset_invalid",
            "Row 2: the label 'n' is not a number; regression needs numeric labels.",
        ),
        (
            "d.csv",
            "sequence,label\n" + "MKV,1\n" * 5 + "AAA,2\n" * 5,
            {},
            "dataset_invalid",
            "Too few rows: 10",
        ),
        (
            "d.csv",
            "sequence,label\n,1\n,2\n",
            {},
            "dataset_invalid",
            "no rows with both a sequence and a label",
        ),
        (
            "d.csv",
            "sequence,label\nMK1V,1\n",
            {},
            "dataset_invalid",
            "Row 2: '1' in the sequence is not a residue letter.",
        ),
        (
            "d.fasta",
            ">a\nMKV\n>b\nAAA\n",
            {},
            "dataset_invalid",
            "no rows with both a sequence and a label",
        ),
        (
            "d.csv",
            GOOD,
            {"epochs": 0},
            "params_invalid",
            "params.epochs: Ensure this value is greater than or equal to 1.",
        ),
        ("d.csv", GOOD, {"epochs": 2.5}, "params_invalid", "params.epochs: A valid integer"),
        ("d.csv", GOOD, {"lr": "fast"}, "params_invalid", "params.lr: A valid number"),
        (
            "d.csv",
            GOOD,
            {"task": "clustering"},
            "params_invalid",
            'params.task: "clustering" is not a valid choice.',
        ),
        (
            "d.csv",
            GOOD,
            {"optimizer": "sgd"},
            "params_invalid",
            "params.optimizer: Unknown parameter; train takes task, epochs,",
        ),
    ],
)
def test_a_bad_training_submission_gets_400_saying_why(
    api, alice, project, name, text, params, code, detail
):
    response = submit(api, alice, project, upload(api, alice, project, name, text), **params)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert detail in response.json()["detail"]
    assert not Job.objects.exists()


def test_an_empty_dataset_is_refused_at_upload(api, alice, project):
    response = api(alice).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile("d.csv", b"")},
        format="multipart",
    )
    assert response.status_code == 400 and response.json()["detail"] == "The file is empty."


def test_a_good_dataset_is_accepted_with_defaults_filled_in(api, alice, project):
    response = submit(api, alice, project, upload(api, alice, project, "d.csv", GOOD), epochs=3)
    assert response.status_code == 201
    assert response.json()["params"] == {
        "task": "classification",
        "epochs": 3,
        "lr": 0.001,
        "batch_size": 64,
        "val_fraction": 0.2,
        "seed": 0,
        "notes": "",
        "sequence_column": "sequence",
        "label_column": "label",
    }


def test_a_fasta_with_labels_in_its_headers_is_a_dataset(api, alice, project):
    fasta = "".join(
        f">s{n} label={'b' if n % 2 else 'n'}\nMKV{'RGD' if n % 2 else 'AAA'}\n" for n in range(30)
    )
    response = submit(api, alice, project, upload(api, alice, project, "d.fasta", fasta))
    assert response.status_code == 201


def test_scoring_needs_a_succeeded_train_job_the_user_can_see(api, alice, charlie, project):
    from jobs.lifecycle import transition

    dataset = upload(api, alice, project, "d.csv", GOOD)
    train = Job.objects.get(pk=submit(api, alice, project, dataset).json()["id"])
    new = upload(api, alice, project, "new.fasta", ">x\nMKVRGD\n")
    body = {"project": project.pk, "kind": "score", "inputs": [new]}
    refused = api(alice).post(
        "/api/v1/jobs/", {**body, "params": {"model_job": train.pk}}, format="json"
    )
    assert (
        refused.status_code == 400
        and "is queued; only a succeeded one has a model" in refused.json()["detail"]
    )
    missing = api(alice).post(
        "/api/v1/jobs/", {**body, "params": {"model_job": 999}}, format="json"
    )
    assert "There is no train job 999 you can see." in missing.json()["detail"]
    theirs = api(charlie).post("/api/v1/projects/", {"name": "C"}, format="json").json()["id"]
    charlie_new = upload(api, charlie, type("P", (), {"pk": theirs}), "n.fasta", ">x\nMKV\n")
    stranger = api(charlie).post(
        "/api/v1/jobs/",
        {
            "project": theirs,
            "kind": "score",
            "inputs": [charlie_new],
            "params": {"model_job": train.pk},
        },
        format="json",
    )
    assert stranger.status_code == 400 and "you can see" in stranger.json()["detail"]
    transition(train, State.CANCELLED, reason="test")


def test_the_preview_shows_a_tables_columns_and_first_rows(api, alice, bob, charlie, project):
    dataset = upload(api, alice, project, "d.csv", GOOD)
    preview = api(bob).get(f"/api/v1/uploads/{dataset}/preview/").json()
    assert preview["columns"] == ["sequence", "label"] and len(preview["rows"]) == 5
    assert api(charlie).get(f"/api/v1/uploads/{dataset}/preview/").status_code == 404


def test_the_training_page_submits_a_train_job(client, alice, project, api):
    dataset = upload(api, alice, project, "d.csv", GOOD)
    client.force_login(alice)
    page = client.get(f"/projects/{project.pk}/jobs/new/train/")
    assert b"d.csv" in page.content
    response = client.post(
        f"/projects/{project.pk}/jobs/new/train/",
        {
            "inputs": dataset,
            "sequence_column": "sequence",
            "label_column": "label",
            "task": "classification",
            "epochs": 4,
            "lr": 0.001,
            "batch_size": 32,
            "val_fraction": 0.2,
            "seed": 7,
            "priority": "normal",
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.params["epochs"], job.params["seed"]) == ("train", 4, 7)
    bad = client.post(
        f"/projects/{project.pk}/jobs/new/train/",
        {
            "inputs": dataset,
            "label_column": "nope",
            "task": "classification",
            "epochs": 4,
            "lr": 0.001,
            "batch_size": 32,
            "val_fraction": 0.2,
            "seed": 7,
            "priority": "normal",
        },
    )
    assert b"There is no column &#x27;nope&#x27;" in bad.content
