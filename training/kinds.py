"""`train`: a compact sequence model fitted to labeled sequences (training/train.py), and
`score`: a trained model applied to new sequences (training/score.py)."""

import sys

from django.core.files.storage import default_storage
from rest_framework import serializers

from jobs.kinds.base import Command, CommandKind, Page, RunContext
from portal.errors import PortalError
from portal.ids import IdField
from training import seqdata

TASKS = ("classification", "regression")
MIN_ROWS = 20


def invalid(message: str) -> PortalError:
    return PortalError(message, code="params_invalid")


def column(default: str, what: str):
    return serializers.CharField(max_length=200, default=default, help_text=what)


def _dataset_error(exc: seqdata.DatasetError, upload) -> PortalError:
    return PortalError(f"{upload.name}: {exc}", code="dataset_invalid")


class TrainParams(serializers.Serializer):
    task = serializers.ChoiceField(
        choices=TASKS,
        default="classification",
        help_text="Classify the labels, or predict their numbers (regression).",
    )
    epochs = serializers.IntegerField(min_value=1, max_value=500, default=10)
    lr = serializers.FloatField(min_value=1e-6, max_value=1.0, default=1e-3, label="Learning rate")
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, default=64)
    val_fraction = serializers.FloatField(
        min_value=0.05,
        max_value=0.5,
        default=0.2,
        label="Validation fraction",
        help_text="The share of rows held out to validate on.",
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)
    notes = serializers.CharField(
        max_length=2000, allow_blank=True, default="", style={"base_template": "textarea.html"}
    )
    sequence_column = column("sequence", "The table's column holding the sequences.")
    label_column = column("label", "The table's column holding the labels.")


class TrainKind(CommandKind):
    name = "train"
    title = "Train a sequence model"
    gpu = "optional"
    requires = ("torch",)
    min_inputs = max_inputs = 1
    input_kinds = ("csv", "tsv", "fasta")
    Params = TrainParams
    page = Page(
        template="training/detail.html", scripts=("training/model.js",), form="training/new.html"
    )
    headline = (("val_accuracy", "accuracy"), ("val_rmse", "RMSE"))

    def validate(self, params: dict, inputs: list, **context) -> dict:
        cleaned = self.clean_params(params)
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
            seqdata.check_labeled(rows, cleaned["task"], MIN_ROWS)
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
                "training.train",
                "--data",
                str(context.inputs[0].path),
                "--kind",
                context.inputs[0].kind,
                "--out",
                str(context.out),
                "--params",
                json.dumps(context.params),
            ]
        )


class ScoreParams(serializers.Serializer):
    model_job = IdField(help_text="A succeeded train job whose model scores the sequences.")
    sequence_column = column("sequence", "The table's column holding the sequences.")


class ScoreKind(CommandKind):
    name = "score"
    title = "Score sequences with a trained model"
    gpu = "optional"
    requires = ("torch",)
    min_inputs = max_inputs = 1
    input_kinds = ("csv", "tsv", "fasta")
    Params = ScoreParams

    def validate(self, params: dict, inputs: list, *, user=None, project=None, **context) -> dict:
        from jobs.models import State
        from jobs.selectors import jobs_visible_to

        cleaned = self.clean_params(params)
        model_job = cleaned["model_job"]
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

    def extra_inputs(self, job) -> list[dict]:
        from jobs.models import Artifact

        model = Artifact.objects.get(job_id=job.params["model_job"], name="model.pth")
        return [{"name": "model.pth", "storage_key": model.storage_key, "sha256": model.sha256}]

    def build(self, context: RunContext) -> Command:
        return Command(
            [
                sys.executable,
                "-m",
                "training.score",
                "--model",
                str(context.extras["model.pth"]),
                "--data",
                str(context.inputs[0].path),
                "--kind",
                context.inputs[0].kind,
                "--column",
                context.params["sequence_column"],
                "--out",
                str(context.out),
            ]
        )
