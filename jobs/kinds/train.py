"""`train`: a compact sequence model fitted to labeled sequences (jobs/programs/train.py), and
`score`: a trained model applied to new sequences (jobs/programs/score.py)."""

import sys

from django.core.files.storage import default_storage

from jobs.kinds.base import Command, JobKind, RunContext
from jobs.programs import seqdata
from portal.errors import PortalError

TASKS = ("classification", "regression")
MIN_ROWS = 20


def invalid(message: str) -> PortalError:
    return PortalError(message, code="params_invalid")


def _number(params, name, default, low, high, integer=False):
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"'{name}' is a number from {low} to {high}.")
    if integer and value != int(value):
        raise invalid(f"'{name}' is a whole number from {low} to {high}.")
    if not low <= value <= high:
        raise invalid(f"'{name}' must lie between {low} and {high}; {value} is out of range.")
    return int(value) if integer else float(value)


def _column(params, name, default):
    value = params.get(name, default)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise invalid(f"'{name}' names a column of the table.")
    return value.strip()


def _dataset_error(exc: seqdata.DatasetError, upload) -> PortalError:
    return PortalError(f"{upload.name}: {exc}", code="dataset_invalid")


class TrainKind(JobKind):
    name = "train"
    title = "Train a sequence model"
    gpu = "optional"
    requires = ("torch",)
    min_inputs = max_inputs = 1
    input_kinds = ("csv", "tsv", "fasta")
    PARAMS = {
        "task",
        "epochs",
        "lr",
        "batch_size",
        "val_fraction",
        "seed",
        "notes",
        "sequence_column",
        "label_column",
    }

    def validate(self, params: dict, inputs: list, **context) -> dict:
        unknown = set(params) - self.PARAMS
        if unknown:
            raise invalid(
                f"Unknown parameter(s) for train: {', '.join(sorted(unknown))}; it takes "
                f"{', '.join(sorted(self.PARAMS))}."
            )
        task = params.get("task", "classification")
        if task not in TASKS:
            raise invalid(f"'task' is classification or regression, not '{task}'.")
        notes = params.get("notes", "")
        if not isinstance(notes, str) or len(notes) > 2000:
            raise invalid("'notes' is text of at most 2000 characters.")
        cleaned = {
            "task": task,
            "epochs": _number(params, "epochs", 10, 1, 500, integer=True),
            "lr": _number(params, "lr", 1e-3, 1e-6, 1.0),
            "batch_size": _number(params, "batch_size", 64, 1, 4096, integer=True),
            "val_fraction": _number(params, "val_fraction", 0.2, 0.05, 0.5),
            "seed": _number(params, "seed", 0, 0, 2**31 - 1, integer=True),
            "notes": notes,
            "sequence_column": _column(params, "sequence_column", "sequence"),
            "label_column": _column(params, "label_column", "label"),
        }
        upload = inputs[0]
        # The dataset is read now, so a bad one is refused here and not found out on a node.
        try:
            with default_storage.open(upload.storage_key, "rb") as raw:
                rows = seqdata.read_labeled(
                    seqdata.text_stream(raw),
                    upload.kind,
                    cleaned["sequence_column"],
                    cleaned["label_column"],
                )
            seqdata.check_labeled(rows, task, MIN_ROWS)
        except seqdata.DatasetError as exc:
            raise _dataset_error(exc, upload) from None
        if round(len(rows) * cleaned["val_fraction"]) < 1:
            raise invalid("The validation fraction leaves no row to validate on.")
        return cleaned

    def build(self, context: RunContext) -> Command:
        import json

        return Command(
            [
                sys.executable,
                "-m",
                "jobs.programs.train",
                "--data",
                str(context.inputs[0]),
                "--kind",
                context.input_kinds[0],
                "--out",
                str(context.out),
                "--params",
                json.dumps(context.params),
            ]
        )


class ScoreKind(JobKind):
    name = "score"
    title = "Score sequences with a trained model"
    gpu = "optional"
    requires = ("torch",)
    min_inputs = max_inputs = 1
    input_kinds = ("csv", "tsv", "fasta")

    def validate(self, params: dict, inputs: list, *, user=None, project=None, **context) -> dict:
        from jobs.models import State
        from jobs.selectors import jobs_visible_to

        unknown = set(params) - {"model_job", "sequence_column"}
        if unknown:
            raise invalid(
                f"Unknown parameter(s) for score: {', '.join(sorted(unknown))}; it takes "
                "model_job and sequence_column."
            )
        model_job = params.get("model_job")
        if isinstance(model_job, bool) or not isinstance(model_job, int):
            raise invalid("'model_job' is the id of a succeeded train job.")
        source = jobs_visible_to(user).filter(pk=model_job).first() if user else None
        if source is None or source.kind != "train":
            raise invalid(f"There is no train job {model_job} you can see.")
        if (
            source.state != State.SUCCEEDED
            or not source.artifacts.filter(name="model.pth").exists()
        ):
            raise invalid(
                f"Train job {model_job} is {source.state}; only a succeeded one has a model."
            )
        cleaned = {
            "model_job": model_job,
            "sequence_column": _column(params, "sequence_column", "sequence"),
        }
        upload = inputs[0]
        try:
            with default_storage.open(upload.storage_key, "rb") as raw:
                sequences = seqdata.read_sequences(
                    seqdata.text_stream(raw), upload.kind, cleaned["sequence_column"]
                )
        except seqdata.DatasetError as exc:
            raise _dataset_error(exc, upload) from None
        if not sequences:
            raise PortalError(f"{upload.name} holds no sequences to score.", code="dataset_invalid")
        return cleaned

    def extra_inputs(self, params: dict) -> list[dict]:
        from jobs.models import Artifact

        model = Artifact.objects.get(job_id=params["model_job"], name="model.pth")
        return [{"name": "model.pth", "storage_key": model.storage_key, "sha256": model.sha256}]

    def build(self, context: RunContext) -> Command:
        return Command(
            [
                sys.executable,
                "-m",
                "jobs.programs.score",
                "--model",
                str(context.extras["model.pth"]),
                "--data",
                str(context.inputs[0]),
                "--kind",
                context.input_kinds[0],
                "--column",
                context.params["sequence_column"],
                "--out",
                str(context.out),
            ]
        )
