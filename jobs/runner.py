"""Running one placement of a job on a node: the Django-Q2 task `run_job`.

The runner is a loop over: claim the run (`job_start`), fetch its inputs into a scratch
directory, start it (a fresh subprocess in its own process group, jobs/processes.py, or a
request to the slot's resident engine, jobs/engine_client.py), watch it (output into events in
batches; cancel, time and silence limits; the run being superseded), store its artifacts, end
it, and hand the freed slot on (`hand_over`, jobs/placement.py): a job placed there is run
next by the same loop. Everything it writes is fenced by the placement number it was given.
"""

import hashlib
import logging
import os
import queue
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from jobs import markers
from jobs.engine_client import EngineRun, engines_dir, make_room
from jobs.kinds import get_kind
from jobs.kinds.base import Input, RunContext, Runs
from jobs.lifecycle import events_append
from jobs.models import Job, State
from jobs.placement import FreedSlot, hand_over, room_needed
from jobs.processes import DONE, Run, SubprocessRun, ThreadRun
from jobs.services import job_finish, job_requeue, job_start
from nodes.probe import warm_engine_report
from nodes.services import node_engines_changed
from portal.uploads.filenames import safe_filename
from portal.uploads.models import Upload

log = logging.getLogger(__name__)

# Output is written at most every FLUSH_SECONDS (or every FLUSH_LINES lines), a line FLUSH_WAIT
# after it came: a line after a quiet moment goes out at once to the eye, a flood goes out in
# batches, never a transaction per line, and the output of a job that ends within FLUSH_WAIT
# goes in the same transaction as its end.
FLUSH_SECONDS = 0.25
FLUSH_WAIT = 0.05
FLUSH_LINES = 500
POLL_SECONDS = 0.5
# Left in a run's scratch directory when it ends: only such directories are cleaned up.
ENDED = ".ended"


# How an engine's error says a job ran out of GPU memory: torch's OutOfMemoryError ("CUDA out
# of memory. Tried to allocate ..."), or boltz's own catch of it (predictions/engine.py).
OUT_OF_MEMORY = re.compile(r"OutOfMemoryError|out of memory", re.IGNORECASE)

# An outcome's state for a run that is no longer the job's (its placement was superseded, or
# the job was requeued meanwhile): nothing of it is stored.
SUPERSEDED = "superseded"


@dataclass
class Outcome:
    """How a run ended: a job's end state (succeeded, failed, cancelled), back to the queue
    (QUEUED), or SUPERSEDED; with what the end stores (`conclude`)."""

    state: str
    reason: str = ""
    error: str = ""
    by: object = None
    artifacts: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    alone: bool = False  # back in the queue to have a GPU to itself


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class JobRun:
    def __init__(self, job: Job, placement: int):
        self.job = job
        self.placement = placement
        self.kind = get_kind(job.kind)
        node_scratch = settings.WORKDIR / "scratch" / (settings.PORTAL_NODE_NAME or "local")
        self.scratch = node_scratch / f"job-{job.pk}-{placement}"
        self.tail: list[str] = []
        self._batch: list[dict] = []
        self._last_flush = 0.0
        self._batch_since = 0.0

    # --- the run --------------------------------------------------------------------------
    def execute(self) -> Outcome:
        """Run the job to its end: how it ended, with its artifacts (when it ended for good)
        and the output not yet written, which goes in the same transaction as its end."""
        if self.scratch.exists():
            shutil.rmtree(self.scratch)
        (self.scratch / "in").mkdir(parents=True)
        (self.scratch / "out").mkdir()
        context = RunContext(
            job_id=self.job.pk,
            params=self.job.params,
            inputs=self.fetch_inputs(),
            scratch=self.scratch,
            out=self.scratch / "out",
            slot=self.job.slot,
            gpu=self.job.gpu,
            extras=self.fetch_extras(),
        )
        if context.gpu is not None:
            self.make_room(context)
        outcome = self.watch(self.start(context))
        if outcome.state not in (SUPERSEDED, State.QUEUED):
            outcome.artifacts = self.store(self.kind.collect(context))
        outcome.events, self._batch = self._batch, []
        return outcome

    def start(self, context: RunContext) -> Run:
        """The job started the way its kind runs (jobs/kinds/base.py: Runs)."""
        if self.kind.runs is Runs.ENGINE:
            return EngineRun(self.kind, context)
        if self.kind.runs is Runs.RUNNER:
            return ThreadRun(self.kind, context)
        if self.kind.runs is Runs.SUBPROCESS:
            return SubprocessRun(self.kind.build(context), context)
        raise RuntimeError(f"a {self.kind.name} job holds no slot and is not run by a node")

    def make_room(self, context: RunContext) -> None:
        """Idle engines on this GPU go if the job needs their memory (not those of the lanes
        other jobs are placed on)."""
        # A slot the node no longer has (it restarted with other lanes since the job was
        # placed) is taken as its GPU's, of unknown memory.
        slot = next((s for s in self.job.node.slots() if s["slot"] == context.slot), {})
        others = dict(
            Job.objects.filter(
                node_id=self.job.node_id,
                gpu=context.gpu,
                state__in=[State.QUEUED, State.RUNNING],
            )
            .exclude(pk=self.job.pk)
            .values_list("slot", "gpu_memory")
        )
        needed = room_needed(self.kind, self.job.gpu_memory, self.job.gpu_alone)
        memory = slot.get("memory")
        stopped = False
        for line in make_room(self.kind, context.slot, context.gpu, needed, memory, others):
            self.add({"type": "log", "line": line})
            stopped = True
        if stopped:
            report = warm_engine_report(engines_dir(settings.PORTAL_NODE_NAME or "local"))
            node_engines_changed(node=self.job.node, warm_engines=report)

    def fetch_inputs(self) -> list[Input]:
        """Copy the inputs from storage into `in/`, checking their digests on the way."""
        inputs, taken = [], set()
        uploads = Upload.objects.filter(job_inputs__job_id=self.job.pk).annotate(
            position=F("job_inputs__position")
        )
        for upload in uploads.order_by("position"):
            name = safe_filename(upload.name)
            if name in taken:
                name = f"{upload.position}-{name}"
            taken.add(name)
            path = self.fetch(upload.storage_key, upload.sha256, name, upload.name)
            inputs.append(Input(path=path, digest=upload.sha256, kind=upload.kind, id=upload.pk))
        return inputs

    def fetch_extras(self) -> dict[str, Path]:
        extras = {}
        for extra in self.kind.extra_inputs(self.job):
            name = f"extra-{safe_filename(extra['name'])}"
            extras[extra["name"]] = self.fetch(
                extra["storage_key"], extra["sha256"], name, extra["name"]
            )
        return extras

    def fetch(self, key: str, sha256: str, name: str, label: str) -> Path:
        path = self.scratch / "in" / name
        digest = hashlib.sha256()
        with default_storage.open(key, "rb") as source, open(path, "wb") as out:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise RuntimeError(f"input '{label}' in storage does not match its digest")
        return path

    def watch(self, process: Run) -> Outcome:
        """Pump output into events until the run ends. A reason to stop it (cancel, limits,
        its node disabled, the run superseded) stops the process once; how it ended is that
        reason, else what the process's exit says."""
        started = last_output = time.monotonic()
        next_poll = started + POLL_SECONDS
        stop: Outcome | None = None
        open_streams = process.open_streams
        while open_streams:
            item = self.next_line(process)
            now = time.monotonic()
            if item is DONE:
                open_streams -= 1
            elif item is not None:
                last_output = now
                self.add(markers.parse(item))
            why = None
            if self._batch and (len(self._batch) >= FLUSH_LINES or now >= self._flush_due()):
                if not self.flush():
                    why = Outcome(SUPERSEDED)
            if why is None and stop is None and now >= next_poll:
                next_poll = now + POLL_SECONDS
                why = self.check(started, last_output, now)
            if why is not None:
                if stop is None:
                    process.stop(settings.PORTAL_JOB_KILL_GRACE)
                if stop is None or why.state == SUPERSEDED:
                    stop = why
        code = process.exit_code()
        return stop or self.exited(process, code)

    def next_line(self, process: Run):
        """The next line of output, DONE when a stream ended, or None after a short wait
        (shorter when output waits to be written)."""
        wait = 0.1 if not self._batch else min(0.1, max(0.0, self._flush_due() - time.monotonic()))
        try:
            return process.lines.get(timeout=wait)
        except queue.Empty:
            return None

    def exited(self, process: Run, code: int | None) -> Outcome:
        """How a run that ended on its own ended."""
        if code == 0:
            return Outcome(State.SUCCEEDED, "finished")
        tail = "\n".join(self.tail[-20:])
        if process.error and self.out_of_memory_beside_others(process.error):
            return Outcome(
                State.QUEUED,
                f"it ran out of GPU memory ({process.error}); back in the queue once, to run "
                "with the GPU to itself (no other job, no idle engine)",
                alone=True,
            )
        if process.error:
            # An engine's own error (its load failed, or the job raised in it), or the error
            # of a runner kind's work.
            return Outcome(State.FAILED, f"{process.error_prefix}{process.error}", tail)
        if code is not None and code < 0:
            return Outcome(State.FAILED, f"was killed by {signal.Signals(-code).name}", tail)
        return Outcome(State.FAILED, f"exited with code {code}", tail)

    def out_of_memory_beside_others(self, error: str) -> bool:
        """Whether the run failed for GPU memory where its GPU may have held other jobs or
        idle engines: then it runs again alone, once (out of memory alone, it fails)."""
        return (
            self.job.gpu is not None
            and self.kind.shares_gpu
            and not self.job.gpu_alone
            and OUT_OF_MEMORY.search(error) is not None
        )

    def check(self, started: float, last_output: float, now: float) -> Outcome | None:
        """Why to stop the run now, if at all, from the job's row and the clock."""
        job = self.job
        row = (
            Job.objects.filter(pk=job.pk)
            .values(
                "state", "placement", "cancel_requested", "cancel_requested_by", "node__enabled"
            )
            .first()
        )
        if row is None or row["placement"] != self.placement or row["state"] != State.RUNNING:
            return Outcome(SUPERSEDED)
        if row["cancel_requested"]:
            by = get_user_model().objects.filter(pk=row["cancel_requested_by"]).first()
            who = f" by {by.username}" if by else ""
            return Outcome(State.CANCELLED, f"cancelled{who}", by=by)
        if not row["node__enabled"]:
            return Outcome(State.QUEUED, "its node was disabled")
        if now - started > job.time_limit:
            return Outcome(
                State.FAILED,
                f"ran past its time limit of {_duration(job.time_limit)}",
                "Stopped: the job ran past its time limit.",
            )
        if now - last_output > job.silence_limit:
            return Outcome(
                State.FAILED,
                f"printed nothing and reported no progress for {_duration(job.silence_limit)}",
                "Stopped: the job went silent.",
            )
        return None

    # --- events ---------------------------------------------------------------------------
    def _flush_due(self) -> float:
        """When the waiting output is due to be written (monotonic clock)."""
        return max(self._batch_since + FLUSH_WAIT, self._last_flush + FLUSH_SECONDS)

    def add(self, event: dict) -> None:
        if not self._batch:
            self._batch_since = time.monotonic()
        if event["type"] == "log":
            self.tail = [*self.tail[-40:], event["line"]]
        self._batch.append(event)

    def flush(self) -> bool:
        batch, self._batch = self._batch, []
        self._last_flush = time.monotonic()
        return events_append(
            job_id=self.job.pk, events=batch, placement=self.placement, durable=False
        )

    # --- artifacts and scratch ------------------------------------------------------------
    def store(self, paths: list[Path]) -> list[dict]:
        artifacts, taken = [], set()
        out = self.scratch / "out"
        for path in paths:
            parts = [safe_filename(part) for part in path.relative_to(out).parts]
            name = "/".join(parts)
            if name in taken:
                continue
            taken.add(name)
            key = f"artifacts/{self.job.pk}/{self.placement}/{name}"
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                f.seek(0)
                stored = default_storage.save(key, File(f, name=name))
            artifacts.append(
                {
                    "name": name,
                    "size": path.stat().st_size,
                    "sha256": digest.hexdigest(),
                    "storage_key": stored,
                }
            )
        return artifacts

    def cleanup(self) -> None:
        """Mark this run's scratch directory as ended, and remove those of ended runs on this
        node but the newest few (kept for debugging; `scratch_cleanup`)."""
        if self.scratch.exists():
            (self.scratch / ENDED).touch()
        scratch_cleanup(self.scratch.parent, settings.PORTAL_SCRATCH_KEEP)


def scratch_cleanup(parent: Path, keep: int) -> tuple[int, int]:
    """Remove the scratch directories of ended runs under `parent` but the newest `keep`:
    (directories removed, bytes freed). Other runs may still be going: a directory without the
    mark is theirs, unless it is older than any run can last (its runner was killed)."""
    if not parent.exists():
        return 0, 0
    abandoned = time.time() - settings.PORTAL_JOB_MAX_TIME_LIMIT - 3600
    ended = []
    for run in os.scandir(parent):
        if not run.is_dir():
            continue
        try:
            ended.append((os.stat(os.path.join(run.path, ENDED)).st_mtime, run.path))
        except FileNotFoundError:
            if run.stat().st_mtime < abandoned:
                ended.append((0.0, run.path))
    ended.sort(reverse=True)
    removed = freed = 0
    for _, old in ended[keep:]:
        freed += sum(
            f.stat().st_size for f in Path(old).rglob("*") if f.is_file() and not f.is_symlink()
        )
        shutil.rmtree(old, ignore_errors=True)
        removed += 1
    return removed, freed


def run_job(job_id: int, placement: int) -> str:
    """The Django-Q2 task a placement enqueues on its node's queue.

    Runs the job, then whatever the slot is handed over to, one after another, while
    Django-Q2's timeout for this task leaves room for the next job's whole time limit (see
    `hand_over`): a busy slot goes from job to job without waiting for the broker.
    """
    ends = time.monotonic() + settings.Q_CLUSTER["timeout"]
    task = f"job {job_id} placement {placement}"
    ran = []
    following = (job_id, placement)
    while following is not None:
        job = job_start(
            job_id=following[0],
            placement=following[1],
            node_name=settings.PORTAL_NODE_NAME,
            boot_id=settings.PORTAL_NODE_BOOT_ID,
        )
        if job is None:
            break  # a second delivery, a superseded placement, or cancelled before it started
        ran.append(job.pk)
        run = JobRun(job, following[1])
        try:
            outcome = run.execute()
        except Exception as exc:
            log.exception("job %s failed in its runner", job.pk)
            outcome = Outcome(
                State.FAILED, f"the node's runner failed: {exc}"[:400], error=str(exc)
            )
        finally:
            run.cleanup()
        following = end_and_hand_over(run, outcome, within=ends - time.monotonic())
    if not ran:
        return f"{task}: nothing to do"
    if len(ran) == 1:
        return f"{task}: done"
    return f"{task}: done, then job(s) {', '.join(map(str, ran[1:]))} on its slot"


def conclude(run: JobRun, outcome: Outcome) -> None:
    """Store how a run ended, fenced by its placement: its end (with its last output and its
    artifacts), or its output and its job back in the queue; nothing for a superseded run."""
    job = run.job
    if outcome.state == SUPERSEDED:
        log.info("job %s placement %s was superseded; nothing stored", job.pk, run.placement)
    elif outcome.state == State.QUEUED:
        events = outcome.events
        if not events or events_append(
            job_id=job.pk, placement=run.placement, events=events, durable=False
        ):
            job_requeue(job=job, reason=outcome.reason, alone=outcome.alone)
    else:
        job_finish(
            job_id=job.pk,
            placement=run.placement,
            state=outcome.state,
            reason=outcome.reason,
            error=outcome.error,
            artifacts=outcome.artifacts,
            events=outcome.events,
            by=outcome.by,
        )


def end_and_hand_over(run: JobRun, outcome: Outcome, within: float) -> tuple[int, int] | None:
    """The one way a run ends: store how it ended (`conclude`) and hand its slot on, in one
    transaction: the slot is never seen free between its two jobs, so the job that follows on
    it is this runner's to run at once. A hand-over that fails takes the end down with it; the
    end is then stored alone.

    If the slot got no job, another hand-over follows the commit: a job submitted while the
    run was ending had its own pass find the slot still taken, and would otherwise wait for
    the scheduler's sweep. (If that pass fails too, the sweep places what it could not.)"""
    job = run.job
    freed = FreedSlot(node_id=job.node_id, slot=job.slot, within=within)
    following = None
    try:
        with transaction.atomic():
            conclude(run, outcome)
            following = hand_over(freed)
    except Exception:
        log.exception("handing over the slot of job %s failed", job.pk)
        conclude(run, outcome)
    if following is None:
        try:
            following = hand_over(freed)
        except Exception:
            log.exception("handing over the slot of job %s failed", job.pk)
    return following
