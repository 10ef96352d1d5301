"""The registry of job kinds. Adding a kind: its own module, and one line below."""

import importlib

from django.conf import settings

from jobs.kinds.base import JobKind
from jobs.kinds.check import CheckKind
from jobs.kinds.predict import PredictKind
from jobs.kinds.train import ScoreKind, TrainKind

_BUILT_IN: list[JobKind] = [
    CheckKind(),
    PredictKind(),
    TrainKind(),
    ScoreKind(),
]

_kinds: dict[str, JobKind] | None = None


def register(kind: JobKind) -> JobKind:
    registry()[kind.name] = kind
    return kind


def registry() -> dict[str, JobKind]:
    global _kinds
    if _kinds is None:
        _kinds = {kind.name: kind for kind in _BUILT_IN}
        # Modules named in PORTAL_JOB_KIND_MODULES register more kinds when imported.
        for module in settings.PORTAL_JOB_KIND_MODULES:
            importlib.import_module(module)
    return _kinds


def get_kind(name: str) -> JobKind | None:
    return registry().get(name)
