"""How a parent job (a design campaign, a screen: kinds that hold no slot) moves on: its app's
step, run by the scheduler at every sweep, never from a node, each in one transaction holding
the parent's row. A step decides from what its children did since the last and stores what it
decides with what it changes, so a restart of anything at any moment repeats no step."""

import logging

from django.db import transaction

from jobs.lifecycle import events_append
from jobs.models import Job, State
from jobs.services import job_conclude

log = logging.getLogger(__name__)


class Ended(Exception):
    """The parent ends now, in this state, for this reason."""

    def __init__(self, state: str, reason: str, error: str = ""):
        super().__init__(reason)
        self.state, self.reason, self.error = state, reason, error


class ParentStep:
    """One step of a parent job: `run` moves it on (raising `Ended` to end it); what it says
    goes into the parent's log with the step; `results` are the artifacts it ends with when it
    succeeds."""

    def __init__(self, job: Job):
        self.job = job
        self.params = job.params
        self.events: list[dict] = []

    def say(self, line: str) -> None:
        self.events.append({"type": "log", "line": line})

    def flush(self) -> None:
        if self.events:
            events_append(job_id=self.job.pk, events=self.events)
            self.events = []

    def run(self) -> None:
        raise NotImplementedError

    def results(self) -> list[dict]:
        return []


def advance_all(kind: str, step: type[ParentStep]) -> None:
    """Move every running parent job of `kind` on, one step each; one that fails is logged
    and tried again at the next sweep."""
    for pk in Job.objects.filter(kind=kind, state=State.RUNNING).values_list("pk", flat=True):
        try:
            advance(pk, kind, step)
        except Exception:
            log.exception("%s job %s could not move on", kind, pk)


def advance(job_id: int, kind: str, step: type[ParentStep]) -> None:
    """One step of a running parent job, holding its row; its end, if the step ends it."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, kind=kind, state=State.RUNNING)
        job = job.first()
        if job is None:
            return
        moving = step(job)
        try:
            moving.run()
        except Ended as end:
            moving.flush()
            job_conclude(
                job_id=job.pk,
                state=end.state,
                reason=end.reason,
                error=end.error,
                artifacts=moving.results() if end.state == State.SUCCEEDED else [],
            )
            return
        moving.flush()
