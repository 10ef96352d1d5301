"""State changes of jobs, one service each: submit, start, finish, cancel, re-queue, change
priority, resubmit. They change a job through its record (jobs/lifecycle.py) and ask for a
placement pass (jobs/placement.py) once what they changed is committed.
"""

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from jobs import sql
from jobs.kinds import get_kind, registry
from jobs.kinds.base import JobKind
from jobs.lifecycle import events_append, log_line, record_born, record_pending, transition
from jobs.models import ACTIVE, Artifact, Job, JobInput, Priority, State
from jobs.placement import place_soon
from nodes.models import Node
from portal.errors import PortalError
from portal.projects.models import Project
from portal.uploads.models import Upload

log = logging.getLogger(__name__)


def fingerprint(kind: str, params: dict, digests: list[str]) -> str:
    canonical = json.dumps([kind, params, digests], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _uploads(project: Project, ids: list[int]) -> list[Upload]:
    """The project's uploads with these ids, in their order."""
    found = {u.pk: u for u in Upload.objects.filter(project=project, pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise PortalError(f"No upload {missing[0]} in this project.", code="inputs_invalid")
    return [found[i] for i in ids]


def _check_inputs(kind, inputs) -> None:
    if not kind.min_inputs <= len(inputs) <= kind.max_inputs:
        wanted = (
            f"exactly {kind.min_inputs}"
            if kind.min_inputs == kind.max_inputs
            else f"{kind.min_inputs} to {kind.max_inputs}"
        )
        raise PortalError(
            f"The {kind.name} kind takes {wanted} input upload(s); {len(inputs)} given.",
            code="inputs_invalid",
        )
    for upload in inputs:
        if kind.input_kinds and upload.kind not in kind.input_kinds:
            raise PortalError(
                f"Input '{upload.name}' is {upload.kind.upper()}; a {kind.name} job takes "
                f"{', '.join(k.upper() for k in kind.input_kinds)}.",
                code="inputs_invalid",
            )


def _gpu_memory(kind, params, inputs) -> int | None:
    """The GPU memory the job needs, estimated once (it is stored with the job); a job too big
    for every GPU of the pool is refused now rather than left waiting (unless the kind may run
    on the CPU and a node without GPUs could take it)."""
    needed = kind.gpu_memory(params, inputs) if kind.gpu != "none" else None
    if not needed:
        return None
    nodes = [
        node
        for node in Node.objects.filter(enabled=True)
        if all(node.can_run(engine) for engine in kind.requires)
    ]
    largest = max((gpu.get("memory_total") or 0 for node in nodes for gpu in node.gpus), default=0)
    cpu_only = kind.gpu == "optional" and any(not node.gpus and node.cpu_slots for node in nodes)
    if largest < needed and not cpu_only:
        raise PortalError(
            f"This job needs about {needed / 2**30:.1f} GiB of GPU memory; the largest GPU of "
            f"the nodes that run it has {largest / 2**30:.1f} GiB. Make the input smaller.",
            code="job_too_big",
        )
    return needed


@dataclass
class _Work:
    """A submission checked and ready to store."""

    kind: JobKind
    params: dict
    inputs: list[Upload]
    gpu_memory: int | None
    needs: list[str]
    digest: str
    warnings: list[str] = field(default_factory=list)
    default_name: str = ""
    children: list = field(default_factory=list)  # of (Child, _Work): submitted with it


def _checked(project: Project, by, kind: str, params: dict, inputs: list[int]) -> _Work:
    job_kind = get_kind(kind)
    if job_kind is None:
        raise PortalError(
            f"Unknown job kind '{kind}'; this portal runs: {', '.join(sorted(registry()))}.",
            code="kind_unknown",
        )
    if not isinstance(params, dict):
        raise PortalError("Parameters are a JSON object.", code="params_invalid")
    job_kind.clean_params(params)  # each field first: a script learns of all its mistakes
    inputs = _uploads(project, inputs)
    _check_inputs(job_kind, inputs)
    cleaned = job_kind.validate(params, inputs, user=by, project=project)
    given = {u.pk for u in inputs}
    inputs += _uploads(
        project, [pk for pk in dict.fromkeys(job_kind.named_uploads(cleaned)) if pk not in given]
    )
    return _Work(
        kind=job_kind,
        params=cleaned,
        inputs=inputs,
        gpu_memory=_gpu_memory(job_kind, cleaned, inputs),
        needs=job_kind.needs(cleaned),
        digest=fingerprint(kind, _as_given(job_kind, params, cleaned), [u.sha256 for u in inputs]),
        warnings=job_kind.warnings(cleaned),
        default_name=job_kind.default_name(cleaned, inputs),
    )


def _as_given(kind, given: dict, cleaned: dict) -> dict:
    """The cleaned parameters without those the kind drew because none was given (a random
    seed): what says whether a submission repeats one."""
    return {k: v for k, v in cleaned.items() if k not in kind.drawn or k in given}


def _create(work: _Work, *, project, by, name, priority, limit, now, parent=None) -> Job:
    """Store a checked submission: queued, or pending while the jobs it needs run first."""
    pending = bool(work.children)
    state = State.PENDING if pending else State.QUEUED if work.kind.holds_slot else State.RUNNING
    job = Job.objects.create(
        project=project,
        owner=by,
        kind=work.kind.name,
        name=((name or "").strip() or work.default_name or f"{work.kind.name} job")[:200],
        params=work.params,
        parent=parent,
        priority=priority,
        fingerprint=work.digest,
        time_limit=limit,
        silence_limit=settings.PORTAL_JOB_SILENCE_LIMIT,
        gpu_memory=work.gpu_memory,
        needs=work.needs,
        warnings=work.warnings,
        state=state,
        created_at=now,
        queued_at=None if pending else now,
        started_at=now if state == State.RUNNING else None,
        event_seq=0 if pending else 1,
    )
    JobInput.objects.bulk_create(
        JobInput(job=job, upload=upload, position=i) for i, upload in enumerate(work.inputs)
    )
    return job


def say(job: Job, line: str) -> None:
    """A line of the portal's own in the log of a job whose row the caller holds locked."""
    events_append(job_id=job.pk, events=[log_line(line)], states=None)


@dataclass
class Submission:
    """A job submission checked and ready to store (`validate_submission`, then `job_store`)."""

    project: Project
    by: object
    work: _Work
    name: str
    priority: str
    force: bool
    limit: int
    # One of the jobs a submission its kind split stands for (`JobKind.split`).
    part: bool = False


def validate_submission(
    *,
    project: Project,
    by,
    kind: str,
    params: dict,
    inputs: list[int],
    name: str = "",
    priority: str = "normal",
    force: bool = False,
    time_limit: int | None = None,
) -> Submission:
    """Everything a submission is checked for, stored nothing: PortalError (a 400 naming the
    problem) if it is refused."""
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
    work = _checked(project, by, kind, params, inputs)
    work.children = [
        (child, _checked(project, by, child.kind, child.params, list(child.inputs)))
        for child in work.kind.first_children(work.params)
    ]
    return Submission(project, by, work, name, priority, force, limit)


def validate_submissions(
    *, project: Project, by, kind: str, params: dict, inputs: list[int], name: str = "", **rest
) -> list[Submission]:
    """A submission checked as `validate_submission` does, or, where its kind splits it into
    several jobs (`JobKind.split`: one per record of a file), each of them."""
    job_kind = get_kind(kind)
    parts = None
    if job_kind is not None and isinstance(params, dict):
        job_kind.clean_params(params)
        parts = job_kind.split(params, _uploads(project, inputs))
    if parts == []:
        raise PortalError(
            "The submission stands for no job: its input has no records.", code="params_invalid"
        )
    if parts is None:
        return [
            validate_submission(
                project=project, by=by, kind=kind, params=params, inputs=inputs, name=name, **rest
            )
        ]
    submissions = [
        validate_submission(
            project=project,
            by=by,
            kind=kind,
            params=part_params,
            inputs=[u.pk for u in part_inputs],
            name=" ".join(filter(None, [name.strip(), part_name])),
            **rest,
        )
        for part_name, part_params, part_inputs in parts
    ]
    for submission in submissions:
        submission.part = True
    return submissions


def job_store(submission: Submission) -> tuple[Job, bool]:
    """Store a checked submission; returns (job, created). Part of the caller's transaction,
    if any."""
    project, by, work = submission.project, submission.by, submission.work
    with transaction.atomic():
        if not submission.force:
            # Two submissions of the same work cannot both create a job.
            sql.lock_submissions(project.pk, work.digest)
            existing = (
                Job.objects.filter(project=project, fingerprint=work.digest, state__in=ACTIVE)
                .order_by("id")
                .first()
            )
            if existing is not None:
                return existing, False
        now = timezone.now()
        reason = f"submitted by {by.username}"
        stored = {"project": project, "by": by, "limit": submission.limit, "now": now}
        stored["priority"] = Priority.from_name(submission.priority)
        job = _create(work, name=submission.name, **stored)
        made = []
        for child, child_work in work.children:
            made.append(_create(child_work, name=child.name, parent=job, **stored))
            record_born(made[-1].pk, State.QUEUED, f"{reason} for job {job.pk}", by, now)
        if made:
            waiting = ", ".join(f"{child.name} (job {child.pk})" for child in made)
            record_pending(job.pk, reason, f"waiting for {waiting}", by, now)
        else:
            record_born(job.pk, job.state, reason, by, now)
    transaction.on_commit(place_soon)
    job.input_ids = [u.pk for u in work.inputs]
    return job, True


def job_submit(**submission) -> tuple[Job, bool]:
    """Validate and queue a job; returns (job, created). `inputs` are ids of uploads in the
    project, in order (see `validate_submission` for the rest).

    The same kind, parameters and input bytes already queued or running in the project give
    back that job, unless `force`. A job whose kind gives it children (`first_children`, such
    as a search) is stored pending with them, queued; it goes on when they have ended.
    """
    return job_store(validate_submission(**submission))


def job_submit_all(**submission) -> list[tuple[Job, bool]]:
    """`job_submit` for a submission its kind may split into several jobs: all are checked,
    then all stored or none."""
    return job_submit_batch(validate_submissions(**submission))


def job_submit_batch(submissions: list[Submission]) -> list[tuple[Job, bool]]:
    """Store checked submissions all together or none (one transaction)."""
    with transaction.atomic():
        return [job_store(submission) for submission in submissions]


def job_children_ended(job_id: int) -> Job | None:
    """A pending job whose children have all ended goes on as its kind decides (queued, or
    failed with the reason). Called when a child ends, and by the sweep for any missed."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, state=State.PENDING).first()
        if job is None:
            return None
        children = list(job.children.order_by("id"))
        if not children or any(child.state in ACTIVE for child in children):
            return None
        state, reason, error = get_kind(job.kind).children_ended(job, children)
        fields = {"queued_at": timezone.now()} if state == State.QUEUED else {"error": error}
        done = transition(job, state, reason=reason, **fields)
    if done is not None and state == State.QUEUED:
        transaction.on_commit(place_soon)
    return done


def job_add_children(*, parent: Job, children: list) -> list[Job]:
    """Submit jobs (`Child` specs) for a running job that holds no slot (the candidates of a
    search): checked as any submission, queued, with the parent's owner, project,
    priority and time limit. Part of the caller's transaction."""
    works = [
        (
            child,
            _checked(parent.project, parent.owner, child.kind, child.params, list(child.inputs)),
        )
        for child in children
    ]
    now = timezone.now()
    made = []
    with transaction.atomic(savepoint=False):
        for child, work in works:
            job = _create(
                work,
                project=parent.project,
                by=parent.owner,
                name=child.name,
                priority=parent.priority,
                limit=parent.time_limit,
                now=now,
                parent=parent,
            )
            record_born(job.pk, State.QUEUED, f"submitted for job {parent.pk}", None, now)
            made.append(job)
    transaction.on_commit(place_soon)
    return made


def artifact_stored(job: Job, name: str, data: bytes) -> dict:
    """Bytes a job's app made for it (a ranking, its parameters), stored as one of its
    artifacts-to-be: what `job_conclude` takes."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    key = default_storage.save(f"artifacts/{job.pk}/0/{name}", ContentFile(data))
    return {
        "name": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "storage_key": key,
    }


def job_conclude(
    *, job_id: int, state: str, reason: str, error: str = "", artifacts: Iterable[dict] = ()
) -> bool:
    """End a running job that holds no slot, with the artifacts its app made for it."""
    return job_finish(
        job_id=job_id,
        placement=0,
        state=state,
        reason=reason,
        error=error,
        artifacts=artifacts,
    )


def _after_end(job: Job | None) -> None:
    """Once a job's end is committed, the job it worked for hears of it."""
    if job is not None and job.parent_id is not None:
        parent = job.parent_id
        transaction.on_commit(lambda: job_children_ended(parent))


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
        node_engines=lambda current: Node.objects.get(name=node_name).engines or {},
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
) -> bool:
    """End a run: store its last events, move the job to its final state and store its
    artifacts, all or nothing (and part of the caller's transaction, if any). The runner that
    ends it hands the freed slot on (jobs/placement.py: `hand_over`)."""
    # Its progress says how it ended, not what it was doing last (an "about 2 min left" stayed
    # on a finished job's page and in the API).
    extra = {"progress_message": reason[:500]}
    if state == State.SUCCEEDED:
        extra["progress"] = 100
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
            Artifact.objects.bulk_create(
                Artifact(job_id=job_id, placement=placement, created_at=timezone.now(), **a)
                for a in artifacts
            )
            _after_end(done)
    return done is not None


def job_cancel(*, job: Job, by) -> Job:
    """Cancel a job: at once if it has not started; a running one is stopped by its runner
    (the whole process group, within seconds). The jobs it is waiting for go with it."""
    with transaction.atomic():
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.state in (State.PENDING, State.QUEUED) or (
            current.state == State.RUNNING and not get_kind(current.kind).holds_slot
        ):
            transition(current, State.CANCELLED, reason=f"cancelled by {by.username}", by=by)
            _after_end(current)
        elif current.state == State.RUNNING:
            if not current.cancel_requested:
                Job.objects.filter(pk=job.pk).update(cancel_requested=True, cancel_requested_by=by)
                say(current, f"cancel requested by {by.username}")
        else:
            raise PortalError(
                f"The job has {current.state} already; there is nothing to cancel.",
                code="job_not_cancellable",
            )
    for child in current.children.filter(state__in=ACTIVE):
        try:
            job_cancel(job=child, by=by)
        except PortalError:
            pass  # it ended meanwhile
    transaction.on_commit(place_soon)
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
        say(current, f"priority set to {priority} by {by.username}")
    transaction.on_commit(place_soon)
    job.refresh_from_db()
    return job


def job_requeue(
    *, job: Job, reason: str, by=None, counts_as_attempt: bool = False, alone: bool = False
) -> bool:
    """Put a placed or running job back in the queue (its node died, restarted, was taken out
    of service, or an operator asked). A run lost mid-way counts as an attempt when
    `counts_as_attempt`; after the last attempt the job fails instead. `alone`: the job runs
    again with a GPU to itself (it ran out of memory on a GPU it shared)."""
    with transaction.atomic():
        current = Job.objects.select_for_update().filter(pk=job.pk).first()
        if current is None:
            return False
        unplace = {"node": None, "slot": None, "gpu": None, "placed_at": None, "node_boot_id": ""}
        if alone:
            unplace["gpu_alone"] = True
        if current.state == State.QUEUED and current.node_id is not None:
            Job.objects.filter(pk=job.pk).update(**unplace)
            say(current, f"placed again: {reason}")
            done = True
        elif current.state == State.RUNNING and current.node_id is None:
            return False  # a job that holds no slot has no run to lose
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
            if done and done.state != State.QUEUED:
                _after_end(done)
        else:
            return False
    if done:
        transaction.on_commit(place_soon)
    return bool(done)


def job_resubmit(*, job: Job, by) -> Job:
    """A fresh job with the same kind, parameters and inputs (for a finished one)."""
    named = set(get_kind(job.kind).named_uploads(job.params))
    inputs = [
        pk
        for pk in job.job_inputs.order_by("position").values_list("upload_id", flat=True)
        if pk not in named
    ]
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
