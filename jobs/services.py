"""State changes of jobs. Every change of a job's state goes through `transition`, which
records it with its reason and appends a `state` event; every event goes through
`events_append`, which numbers it and fences it against superseded runs.

Concurrency is handled by locking the job's row for the length of one short transaction
(`select_for_update`; SQLite's IMMEDIATE transactions serialise writers the same way), never
across I/O. A runner's writes carry its `placement`: one that no longer matches, because the job
was cancelled, re-queued or placed again, is dropped.
"""

import hashlib
import json
import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from jobs import live, sql
from jobs.kinds import get_kind, registry
from jobs.models import (
    ACTIVE,
    TRANSITIONS,
    Artifact,
    EventType,
    Job,
    JobEvent,
    JobInput,
    JobTransition,
    Priority,
    State,
)
from nodes.models import Node
from portal.errors import PortalError
from portal.projects.models import Project

log = logging.getLogger(__name__)


def fingerprint(kind: str, params: dict, digests: list[str]) -> str:
    canonical = json.dumps([kind, params, digests], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_inputs(kind, inputs) -> None:
    if not kind.min_inputs <= len(inputs) <= kind.max_inputs:
        wanted = (
            f"exactly {kind.min_inputs}"
            if kind.min_inputs == kind.max_inputs
            else f"{kind.min_inputs} to {kind.max_inputs}"
        )
        raise PortalError(
            f"A {kind.name} job takes {wanted} input upload(s); {len(inputs)} given.",
            code="inputs_invalid",
        )
    for upload in inputs:
        if kind.input_kinds and upload.kind not in kind.input_kinds:
            raise PortalError(
                f"Input '{upload.name}' is {upload.kind.upper()}; a {kind.name} job takes "
                f"{', '.join(k.upper() for k in kind.input_kinds)}.",
                code="inputs_invalid",
            )


def _check_fits_the_pool(kind, params, inputs) -> None:
    needed = kind.gpu_memory(params, inputs)
    if not needed:
        return
    largest = max(
        (
            gpu.get("memory_total") or 0
            for node in Node.objects.filter(enabled=True)
            for gpu in node.gpus
        ),
        default=0,
    )
    if largest < needed:
        raise PortalError(
            f"This job needs about {needed / 2**30:.1f} GiB of GPU memory; the largest GPU in "
            f"the pool has {largest / 2**30:.1f} GiB. Make the input smaller.",
            code="job_too_big",
        )


def job_submit(
    *,
    project: Project,
    by,
    kind: str,
    params: dict,
    inputs: list,
    name: str = "",
    priority: str = "normal",
    force: bool = False,
    time_limit: int | None = None,
) -> tuple[Job, bool]:
    """Validate and queue a job; returns (job, created).

    The same kind, parameters and input bytes already queued or running in the project give
    back that job, unless `force`.
    """
    job_kind = get_kind(kind)
    if job_kind is None:
        raise PortalError(
            f"Unknown job kind '{kind}'; this portal runs: {', '.join(sorted(registry()))}.",
            code="kind_unknown",
        )
    if priority not in Priority.labels:
        raise PortalError(
            f"Priority is one of {', '.join(Priority.labels)}.", code="priority_invalid"
        )
    limit = time_limit or settings.PORTAL_JOB_TIME_LIMIT
    if not 0 < limit <= settings.PORTAL_JOB_MAX_TIME_LIMIT:
        raise PortalError(
            f"The time limit is 1 to {settings.PORTAL_JOB_MAX_TIME_LIMIT} seconds.",
            code="time_limit_invalid",
        )
    _check_inputs(job_kind, inputs)
    if not isinstance(params, dict):
        raise PortalError("Parameters are a JSON object.", code="params_invalid")
    cleaned = job_kind.validate(params, inputs, user=by, project=project)
    _check_fits_the_pool(job_kind, cleaned, inputs)
    digest = fingerprint(kind, cleaned, [u.sha256 for u in inputs])

    with transaction.atomic():
        if not force:
            _lock_submissions_of(project.pk, digest)
            existing = sql.job_active_with(project.pk, digest, list(ACTIVE))
            if existing is not None:
                return Job.objects.get(pk=existing), False
        now = timezone.now()
        reason = f"submitted by {by.username}"
        # Born queued: its pending → queued transition is recorded as any other.
        job = Job.objects.create(
            project=project,
            owner=by,
            kind=kind,
            name=(name or "").strip()[:200] or f"{kind} job",
            params=cleaned,
            priority=Priority.from_name(priority),
            fingerprint=digest,
            time_limit=limit,
            silence_limit=settings.PORTAL_JOB_SILENCE_LIMIT,
            state=State.QUEUED,
            created_at=now,
            queued_at=now,
            event_seq=1,
        )
        sql.insert(
            JobInput,
            [{"job": job.pk, "upload": u.pk, "position": i} for i, u in enumerate(inputs)],
        )
        _record_transition(job.pk, State.PENDING, State.QUEUED, reason, by, 0, "", now)
        state = {"type": EventType.STATE, "state": State.QUEUED, "reason": reason}
        _insert_events(job.pk, 0, 1, [state], now)
    transaction.on_commit(_place_soon)
    job.input_ids = [u.pk for u in inputs]
    return job, True


def _lock_submissions_of(project_id: int, digest: str) -> None:
    """Serialise submissions of the same work to one project, so two identical ones cannot
    both be created. PostgreSQL: a transaction-scoped advisory lock on (project, work); SQLite
    serialises every writing transaction already."""
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(
        hashlib.sha256(f"{project_id}:{digest}".encode()).digest()[:8], "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _place_soon():
    from jobs.scheduler import place_queued_jobs, placer

    if settings.PORTAL_PLACE_IN_BACKGROUND:
        placer.request()
    else:
        place_queued_jobs()


def transition(
    job: Job,
    to: str,
    *,
    reason,
    by=None,
    placement: int | None = None,
    from_state: str | None = None,
    node_name: str | None = None,
    output: Iterable[dict] = (),
    **fields,
) -> Job | None:
    """Move a job to state `to` if the state machine allows it (and, given `placement`, if
    that run is still the job's; given `from_state` or `node_name`, if the job is in that
    state or placed on that node). Records the transition and a `state` event, after the
    run's last `output` events if given. `reason` and field values may be functions of the job
    as it was, read under the lock. Returns the job as it is now, or None if nothing changed.
    Four statements: lock, update, two inserts. Inside a caller's transaction it is part of
    it (no savepoint: nothing here is caught and carried on from)."""
    output = list(output)
    with transaction.atomic(savepoint=False):
        current, current_node = _lock(job.pk, placement, from_state, node_name)
        if current is None or to not in TRANSITIONS[current.state]:
            return None
        now = timezone.now()
        fields = {k: v(current) if callable(v) else v for k, v in fields.items()}
        reason = (reason(current) if callable(reason) else reason)[:500]
        if to in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
            fields.setdefault("finished_at", now)
        if output:
            fields = {**_output_fields(output, current.metrics, now), **fields}
        seq = current.event_seq + len(output) + 1
        sql.update(Job, "id = %s", [job.pk], {"state": to, "event_seq": seq, **fields})
        attempt = fields.get("attempt", current.attempt)
        _record_transition(job.pk, current.state, to, reason, by, attempt, current_node, now)
        _insert_events(
            job.pk,
            current.placement,
            current.event_seq + 1,
            [*output, {"type": EventType.STATE, "state": to, "reason": reason}],
            now,
        )
    changed = {**fields, "state": to, "event_seq": seq}
    for name, value in changed.items():
        setattr(job, name, value)
        setattr(current, name, value)
    return current


def _record_transition(job_id, from_state, to, reason, by, attempt, node, at) -> None:
    fields = {"job": job_id, "from_state": from_state, "to_state": to, "reason": reason}
    fields |= {"by": getattr(by, "pk", by), "attempt": attempt, "node": node or "", "at": at}
    sql.insert(JobTransition, [fields])


def _lock(job_id: int, placement, from_state, node_name) -> tuple[Job | None, str | None]:
    """Lock the job's row and read it: (the job as it is, the name of its node), or (None,
    None) if it does not match."""
    conditions = {"placement": placement, "state": from_state, "node_name": node_name}
    found = sql.job_locked(job_id, {k: v for k, v in conditions.items() if v is not None})
    return found or (None, None)


def _insert_events(job_id: int, placement: int, first_seq: int, events: list[dict], now) -> None:
    """Store events numbered from `first_seq`; the caller holds the job's row locked and
    moves its `event_seq` on in the same transaction."""
    records = [
        {
            "job": job_id,
            "seq": first_seq + i,
            "type": event["type"],
            "data": {k: v for k, v in event.items() if k != "type"},
            "placement": placement,
            "created_at": now,
        }
        for i, event in enumerate(events)
    ]
    sql.insert(JobEvent, records)
    at = now.isoformat()
    messages = [{"id": r["seq"], "type": r["type"], "at": at, **r["data"]} for r in records]
    transaction.on_commit(lambda: live.publish(job_id, messages))


def _note(job: Job, line: str) -> None:
    """A log line from the portal itself, for a job whose row the caller holds locked."""
    seq = job.event_seq + 1
    sql.update(Job, "id = %s", [job.pk], {"event_seq": seq})
    _insert_events(
        job.pk, job.placement, seq, [{"type": EventType.LOG, "line": line}], timezone.now()
    )


def events_append(*, job_id: int, placement: int, events: Iterable[dict], durable=True) -> bool:
    """Store a runner's events for its run of a job. False when that run is no longer the
    job's (cancelled, re-queued, placed again): the events are dropped and the run should stop.
    Three queries however many events. `durable=False` lets PostgreSQL commit without waiting
    for its log to reach the disk (the runner's batches of output; never state changes)."""
    events = list(events)
    now = timezone.now()
    with transaction.atomic():
        if not durable and connection.vendor == "postgresql":
            # A runner's output need not wait for the disk: a database crash may lose the
            # last moment of it (events and their numbers together), never a job's state.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        job = sql.job_run_locked(job_id, placement, State.RUNNING)
        if job is None:
            return False
        if not events:
            return True
        fields = {"event_seq": job["event_seq"] + len(events)}
        fields |= _output_fields(events, job["metrics"], now)
        sql.update(Job, "id = %s", [job_id], fields)
        _insert_events(job_id, placement, job["event_seq"] + 1, events, now)
    return True


def _output_fields(events: list[dict], metrics: dict, now) -> dict:
    """What a run's output events change on its job: when it last said something, its
    progress, and the latest point of each metric (given the job's `metrics` so far)."""
    fields = {"last_output_at": now}
    latest = dict(metrics)
    for event in events:
        if event["type"] == EventType.PROGRESS:
            fields["progress"] = event["percent"]
            fields["progress_message"] = event.get("message", "")
        elif event["type"] == EventType.METRIC:
            latest[event["name"]] = {"step": event["step"], "value": event["value"]}
    if latest != metrics:
        fields["metrics"] = latest
    return fields


def job_start(*, job_id: int, placement: int, node_name: str, boot_id: str) -> Job | None:
    """Claim a placed job for this node's runner. None for a second delivery of the same
    task, a superseded placement, or a job cancelled in the meantime."""
    job = Job(pk=job_id)

    def where(current):
        slot = f"GPU {current.gpu}" if current.gpu is not None else "CPU slot"
        return f"started on node {node_name}, {slot}"

    now = timezone.now()
    started = transition(
        job,
        State.RUNNING,
        reason=where,
        placement=placement,
        node_name=node_name,
        started_at=now,
        last_output_at=now,
        attempt=lambda current: current.attempt + 1,
        node_boot_id=boot_id,
        cancel_requested=False,
    )
    return started


def job_finish(
    *,
    job_id: int,
    placement: int,
    state: str,
    reason: str,
    error: str = "",
    artifacts: Iterable[dict] = (),
    events: Iterable[dict] = (),
    by=None,
    place_next: bool = True,
) -> bool:
    """End a run: store its last events, move the job to its final state and store its
    artifacts, all or nothing (and part of the caller's transaction, if any). Then a placement
    pass for the freed slot, unless the caller (a runner that fills its own slot) does that
    itself (`place_next=False`)."""
    extra = {"progress": 100} if state == State.SUCCEEDED else {}
    with transaction.atomic(savepoint=False):
        done = transition(
            Job(pk=job_id),
            state,
            reason=reason,
            by=by,
            placement=placement,
            from_state=State.RUNNING,
            output=events,
            error=error[:10000],
            **extra,
        )
        if done:
            sql.insert(
                Artifact,
                [
                    {"job": job_id, "placement": placement, "created_at": timezone.now(), **a}
                    for a in artifacts
                ],
            )
    if done and place_next:
        transaction.on_commit(_place_soon)
    return done is not None


def job_cancel(*, job: Job, by) -> Job:
    """Cancel a job: at once if it has not started; a running one is stopped by its runner
    (the whole process group, within seconds)."""
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.state in (State.PENDING, State.QUEUED):
            transition(current, State.CANCELLED, reason=f"cancelled by {by.username}", by=by)
        elif current.state == State.RUNNING:
            if not current.cancel_requested:
                Job.objects.filter(pk=job.pk).update(cancel_requested=True, cancel_requested_by=by)
                _note(current, f"cancel requested by {by.username}")
        else:
            raise PortalError(
                f"The job has {current.state} already; there is nothing to cancel.",
                code="job_not_cancellable",
            )
    transaction.on_commit(_place_soon)
    job.refresh_from_db()
    return job


def job_set_priority(*, job: Job, priority: str, by) -> Job:
    if priority not in Priority.labels:
        raise PortalError(
            f"Priority is one of {', '.join(Priority.labels)}.", code="priority_invalid"
        )
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.state not in (State.PENDING, State.QUEUED):
            raise PortalError(
                f"The job is {current.state}; only a waiting job's priority can change.",
                code="job_not_waiting",
            )
        Job.objects.filter(pk=job.pk).update(priority=Priority.from_name(priority))
        _note(current, f"priority set to {priority} by {by.username}")
    transaction.on_commit(_place_soon)
    job.refresh_from_db()
    return job


def job_requeue(*, job: Job, reason: str, by=None, counts_as_attempt: bool = False) -> bool:
    """Put a placed or running job back in the queue (its node died, restarted, was taken out
    of service, or an operator asked). A run lost mid-way counts as an attempt when
    `counts_as_attempt`; after the last attempt the job fails instead."""
    with transaction.atomic():
        current = Job.objects.select_for_update().filter(pk=job.pk).first()
        if current is None:
            return False
        unplace = {"node": None, "slot": None, "gpu": None, "placed_at": None, "node_boot_id": ""}
        if current.state == State.QUEUED and current.node_id is not None:
            Job.objects.filter(pk=job.pk).update(**unplace)
            _note(current, f"placed again: {reason}")
            done = True
        elif current.state == State.RUNNING:
            if current.cancel_requested:
                done = transition(
                    current,
                    State.CANCELLED,
                    reason=f"cancelled ({reason})",
                    by=current.cancel_requested_by,
                )
            elif counts_as_attempt and current.attempt >= settings.PORTAL_JOB_MAX_ATTEMPTS:
                done = transition(
                    current,
                    State.FAILED,
                    reason=f"{reason}; gave up after {current.attempt} attempts",
                    by=by,
                    error=f"The job was lost {current.attempt} times: {reason}.",
                )
            else:
                done = transition(current, State.QUEUED, reason=reason, by=by, **unplace)
        else:
            return False
    if done:
        transaction.on_commit(_place_soon)
    return bool(done)


def job_resubmit(*, job: Job, by) -> Job:
    """A fresh job with the same kind, parameters and inputs (for a finished one)."""
    inputs = [i.upload for i in job.job_inputs.select_related("upload")]
    new, _ = job_submit(
        project=job.project,
        by=by,
        kind=job.kind,
        params=job.params,
        inputs=inputs,
        name=job.name,
        priority=job.priority_name,
        force=True,
        time_limit=job.time_limit,
    )
    return new
