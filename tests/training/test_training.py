"""Training and scoring end to end: the portal, a node and its Django-Q2 cluster in processes
of their own; uploads and jobs through the API, as a scientist's script would."""

import csv
import hashlib
import io
import json
import statistics
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from jobs.models import Job, State
from tests.conftest import REPO, wait_until
from tests.http import post_file
from tests.training.datasets import write_activity_tsv, write_motif_csv, write_motif_fasta
from training.seqmodel import load

pytestmark = pytest.mark.slow


def upload(stack, client, project, path):
    key = client.session.headers["Authorization"].split()[1]
    status, body = post_file(f"{stack.url}/api/v1/uploads/", key, {"project": project.pk}, path)
    assert status == 201, body
    return body["id"]


def run_to_end(client, project, kind, inputs, params, limit=300):
    pk = client.submit(project, kind=kind, inputs=inputs, params=params)["id"]
    started = time.monotonic()
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, limit, every=0.5, what=f"the {kind} job")
    job = Job.objects.get(pk=pk)
    assert job.state == State.SUCCEEDED, job.error
    return job, time.monotonic() - started


def metric_events(job):
    series = {}
    for event in job.events.filter(type="metric").order_by("seq"):
        series.setdefault(event.data["name"], []).append((event.data["step"], event.data["value"]))
    return series


def artifact(client, job, name) -> bytes:
    response = client.get(f"/api/v1/jobs/{job.pk}/artifacts/{name}")
    assert response.status_code == 200
    return response.content


def test_a_classifier_learns_a_motif_and_scores_new_sequences(orm_stack, project, alice, tmp_path):
    orm_stack.add_nodes("node-a")
    client = orm_stack.client(alice)
    dataset = upload(orm_stack, client, project, write_motif_csv(tmp_path / "binders.csv"))
    job, seconds = run_to_end(client, project, "train", [dataset], {"epochs": 5, "seed": 1})
    assert seconds < 300

    series = metric_events(job)
    assert [step for step, _ in series["val_accuracy"]] == [1, 2, 3, 4, 5]
    assert series["val_accuracy"][-1][1] >= 0.9
    assert series["val_loss"][-1][1] < series["val_loss"][0][1]
    metrics = json.loads(artifact(client, job, "metrics.json"))
    assert [
        (e["epoch"], e["val_loss"], e["val_accuracy"], e["train_loss"]) for e in metrics["epochs"]
    ] == [
        (step, loss, accuracy, train)
        for (step, loss), (_, accuracy), (_, train) in zip(
            series["val_loss"], series["val_accuracy"], series["train_loss"], strict=True
        )
    ]
    assert metrics["best"]["val_loss"] == min(v for _, v in series["val_loss"])
    log = artifact(client, job, "train.log").decode()
    assert "epoch 5/5" in log and "[0:0" in log  # with the elapsed time
    ran = json.loads(artifact(client, job, "provenance.json"))
    assert ran["torch_version"] and ran["device"] == "cpu" and ran["seed"] == 1

    model_file = tmp_path / "model.pth"
    model_file.write_bytes(artifact(client, job, "model.pth"))
    model, vocabulary, saved = load(model_file)
    assert saved["classes"] == ["binder", "non-binder"] and saved["params"]["seed"] == 1
    assert model(vocabulary.encode(["MKVRGDLLE"])).shape == (1, 2)

    truth = write_motif_fasta(tmp_path / "new.fasta")
    new = upload(orm_stack, client, project, tmp_path / "new.fasta")
    score, _ = run_to_end(client, project, "score", [new], {"model_job": job.pk})
    rows = list(csv.DictReader(io.StringIO(artifact(client, score, "predictions.csv").decode())))
    # The score's archive names the trained model it used among its inputs, by its digest.
    archive = client.session.get(f"{client.url}/api/v1/jobs/{score.pk}/archive/", timeout=30)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        inputs = json.loads(zf.read("manifest.json"))["inputs"]
    assert {
        "name": "model.pth",
        "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
    } in inputs
    assert [r["name"] for r in rows] == [f"new{n}" for n in range(len(truth))]
    assert set(rows[0]) == {"name", "sequence", "prediction", "p_binder", "p_non-binder"}
    accuracy = sum(r["prediction"] == t for r, t in zip(rows, truth, strict=True)) / len(truth)
    assert accuracy >= 0.9
    assert abs(float(rows[0]["p_binder"]) + float(rows[0]["p_non-binder"]) - 1) < 1e-4
    assert (
        sum(
            e.data["line"] == "model loaded: classification, classes binder, non-binder"
            for e in score.events.filter(type="log")
        )
        == 1
    )


def test_a_regressor_learns_a_numeric_rule(orm_stack, project, alice, tmp_path):
    orm_stack.add_nodes("node-a")
    client = orm_stack.client(alice)
    path, labels = write_activity_tsv(tmp_path / "activity.tsv")
    dataset = upload(orm_stack, client, project, path)
    job, _ = run_to_end(
        client,
        project,
        "train",
        [dataset],
        {
            "task": "regression",
            "epochs": 5,
            "lr": 0.002,
            "seed": 1,
            "sequence_column": "peptide",
            "label_column": "activity",
        },
    )
    rmse = metric_events(job)["val_rmse"]
    assert rmse[-1][1] < 0.35 * statistics.pstdev(labels)
    assert rmse[-1][1] < rmse[0][1]


def test_training_can_be_cancelled_mid_epoch(orm_stack, project, alice, tmp_path):
    orm_stack.add_nodes("node-a")
    client = orm_stack.client(alice)
    dataset = upload(orm_stack, client, project, write_motif_csv(tmp_path / "binders.csv"))
    pk = client.submit(
        project, kind="train", inputs=[dataset], params={"epochs": 200, "batch_size": 8}
    )["id"]
    wait_until(
        lambda: "batch_loss" in Job.objects.get(pk=pk).metrics, 120, what="training to start"
    )
    asked = time.monotonic()
    assert client.post(f"/api/v1/jobs/{pk}/cancel/").status_code == 200
    wait_until(lambda: Job.objects.get(pk=pk).state == State.CANCELLED, 5, what="the cancel")
    assert time.monotonic() - asked < 5


def test_training_is_deterministic_for_a_seed_on_the_cpu(tmp_path):
    data = write_motif_csv(tmp_path / "d.csv", rows=400)
    params = json.dumps(
        {
            "task": "classification",
            "epochs": 2,
            "lr": 0.001,
            "batch_size": 32,
            "val_fraction": 0.2,
            "seed": 3,
            "notes": "",
            "sequence_column": "sequence",
            "label_column": "label",
        }
    )
    for run in ("a", "b"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "training.train",
                "--data",
                str(data),
                "--kind",
                "csv",
                "--out",
                str(tmp_path / run),
                "--params",
                params,
            ],
            cwd=REPO,
            check=True,
            capture_output=True,
            env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""},
        )
    assert (tmp_path / "a" / "metrics.json").read_text() == (
        tmp_path / "b" / "metrics.json"
    ).read_text()
    a = torch.load(tmp_path / "a" / "model.pth", weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pth", weights_only=False)["state_dict"]
    assert all(torch.equal(a[name], b[name]) for name in a)
