"""A job's record: its state machine and its numbered events.

Every change of a job's state goes through `transition`, which records it with its reason and
appends a `state` event; every other event (a log line, from a run or from the portal itself,
a metric point, progress) goes through `events_append` (or a transition's `output`), which
numbers it and fences it against superseded runs. The services
(jobs/services.py), placement and the sweep all change jobs through here; this module asks
nothing of them.

Concurrency is handled by locking the job's row for the length of one short transaction
(`select_for_update`; SQLite's IMMEDIATE transactions serialise writers the same way), never
across I/O. A runner's writes carry its `placement`: one that no longer matches, because the job
was cancelled, re-queued or placed again, is dropped.
"""

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from jobs import live, sql
from jobs.models import TRANSITIONS, EventType, Job, JobEvent, JobTransition, State


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
        Job.objects.filter(pk=job.pk).update(state=to, event_seq=seq, **fields)
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


def record_born(job_id: int, state: str, reason: str, by, at) -> None:
    """The first record of a job born queued (or running, for a job that holds no slot), in
    the transaction that creates it: its transition from pending and its first event."""
    _record_transition(job_id, State.PENDING, state, reason, by, 0, "", at)
    event = {"type": EventType.STATE, "state": state, "reason": reason}
    _insert_events(job_id, 0, 1, [event], at)


def record_pending(job_id: int, reason: str, waiting: str, by, at) -> None:
    """The first record of a job born pending, waiting for its children (in the transaction
    that creates them): its first event, and what it waits for as its progress message."""
    Job.objects.filter(pk=job_id).update(event_seq=2, progress_message=waiting[:500])
    state = {"type": EventType.STATE, "state": State.PENDING, "reason": reason}
    _insert_events(job_id, 0, 1, [state, {"type": EventType.LOG, "line": waiting}], at)


def _record_transition(job_id, from_state, to, reason, by, attempt, node, at) -> None:
    JobTransition.objects.create(
        job_id=job_id,
        from_state=from_state,
        to_state=to,
        reason=reason,
        by_id=getattr(by, "pk", by),
        attempt=attempt,
        node=node or "",
        at=at,
    )


def _lock(job_id: int, placement, from_state, node_name) -> tuple[Job | None, str | None]:
    """Lock the job's row and read it: (the job as it is, the name of its node), or (None,
    None) if it does not match."""
    conditions = {"placement": placement, "state": from_state, "node_name": node_name}
    found = sql.job_locked(job_id, {k: v for k, v in conditions.items() if v is not None})
    return (found, found.locked_node_name) if found else (None, None)


def _insert_events(job_id: int, placement: int, first_seq: int, events: list[dict], now) -> None:
    """Store events numbered from `first_seq`; the caller holds the job's row locked and
    moves its `event_seq` on in the same transaction."""
    records = JobEvent.objects.bulk_create(
        JobEvent(
            job_id=job_id,
            seq=first_seq + i,
            type=event["type"],
            data={k: v for k, v in event.items() if k != "type"},
            placement=placement,
            created_at=now,
        )
        for i, event in enumerate(events)
    )
    messages = [record.as_message() for record in records]
    transaction.on_commit(lambda: live.publish(job_id, messages))


# The states a job may hear output in, by default: a run's output while it runs.
RUNNING = (State.RUNNING,)


def log_line(line: str) -> dict:
    """The event of one log line."""
    return {"type": EventType.LOG, "line": line}


def events_append(
    *,
    job_id: int,
    events: Iterable[dict],
    placement: int | None = None,
    states: tuple[str, ...] | None = RUNNING,
    durable: bool = True,
) -> bool:
    """The one way events (log lines, metric points, progress) join a job's log: numbered,
    with what they change on the job (its progress, its latest metrics), published live.

    A run's output names its `placement`: False (nothing stored, the run should stop) when
    that run is no longer the job's (cancelled, re-queued, placed again). `states` are those
    the job must be in (None: any, for the portal's own lines about a job whose row the caller
    holds locked; a waiting job's app says PENDING). Three queries however many events.
    `durable=False` lets PostgreSQL commit without waiting for its log to reach the disk (the
    runner's batches of output; never state changes)."""
    events = list(events)
    now = timezone.now()
    with transaction.atomic():
        if not durable:
            sql.commit_without_waiting()
        found = Job.objects.select_for_update().filter(pk=job_id)
        if placement is not None:
            found = found.filter(placement=placement)
        if states is not None:
            found = found.filter(state__in=states)
        job = found.values("event_seq", "metrics", "placement").first()
        if job is None:
            return False
        if not events:
            return True
        fields = {"event_seq": job["event_seq"] + len(events)}
        fields |= _output_fields(events, job["metrics"], now)
        Job.objects.filter(pk=job_id).update(**fields)
        _insert_events(job_id, job["placement"], job["event_seq"] + 1, events, now)
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
