"""The registry of job kinds. The engine's own diagnostic (`check`) is built in; every other kind
is registered by its app's `AppConfig.ready` (docs/architecture.md lists them), and modules
named in PORTAL_JOB_KIND_MODULES register more when imported."""

import importlib
import logging
import time

from django.conf import settings

from jobs.kinds.base import JobKind
from jobs.kinds.check import CheckKind

_BUILT_IN: list[JobKind] = [
    CheckKind(),
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


log = logging.getLogger(__name__)


def warm_up() -> None:
    """Every kind's `warm_up`, one after another; one that fails is logged, and its first
    submission loads what it needs then."""
    began = time.monotonic()
    for kind in list(registry().values()):
        try:
            kind.warm_up()
        except Exception:
            log.exception("warming up the %s kind failed", kind.name)
    log.info("job kinds warmed up in %.1f s", time.monotonic() - began)


def get_kind(name: str) -> JobKind | None:
    return registry().get(name)


def headline(job) -> list[tuple[str, float]]:
    """The figures a list of jobs shows beside a job: those its kind names (`JobKind.headline`),
    as (label, value), for the metrics it has."""
    kind = get_kind(job.kind)
    return [
        (label, job.metrics[name]["value"])
        for name, label in (kind.headline if kind else ())
        if isinstance(job.metrics.get(name), dict) and "value" in job.metrics[name]
    ]
