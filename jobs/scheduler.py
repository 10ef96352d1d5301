"""Placing queued jobs on nodes, and the sweep that keeps placements honest.

`place_queued_jobs()` runs when a job is submitted, when a slot frees, when a node becomes
available, and on every sweep. Several may run at once (web processes, runners, the
scheduler): a placement is claimed with a conditional UPDATE on the job and a unique index on
(node, slot), so a job is placed once and a slot holds one job.
"""

import logging
import threading
from collections import Counter
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from django_q.tasks import async_task

from jobs import sql
from jobs.kinds import get_kind
from jobs.kinds.base import JobKind
from jobs.models import Job, State
from jobs.services import job_requeue, transition
from nodes.models import Node

log = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"
# Seconds a runner's task keeps in hand beyond a job's time limit before it takes that job on.
KEEP_MARGIN = 600
# How many of each user's first waiting jobs (per priority) a placement pass reads at least.
PER_USER = 20


def available_nodes() -> list[Node]:
    """Enabled, online nodes that are not draining, by name."""
    return sql.nodes_available(Node.online_since())


def fair_order(jobs: list[Job], placed_per_owner: Counter, last_placed: dict) -> list[Job]:
    """Priority first. Within a priority, users take turns: each user's n-th waiting job comes
    after everyone's (n-1)-th, counting the jobs they have running already, and between users
    level on that count the one served longest ago goes first. Then first come, first served.
    One user's 500 jobs do not starve another user's one."""
    jobs = sorted(jobs, key=lambda j: (-j.priority, j.queued_at, j.pk))
    never = timezone.now() - timedelta(days=36500)
    turn: dict[tuple[int, int], int] = {}
    keyed = []
    for job in jobs:
        key = (job.priority, job.owner_id)
        position = turn.get(key, placed_per_owner[job.owner_id])
        turn[key] = position + 1
        served = last_placed.get(job.owner_id) or never
        keyed.append(((-job.priority, position, served, job.queued_at, job.pk), job))
    return [job for _, job in sorted(keyed, key=lambda pair: pair[0])]


def _fits(kind, slot: dict, needed: int | None) -> bool:
    if kind.gpu == "required" and slot["gpu"] is None:
        return False
    if kind.gpu == "none" and slot["gpu"] is not None:
        return False
    if needed and (slot["gpu"] is None or (slot["memory"] or 0) < needed):
        return False
    return True


def choose_slot(kind, job: Job, nodes: list[Node], free: dict[int, list[dict]]):
    """The best free slot for a job: a GPU first when the kind can use one, then the node with
    most free slots (jobs spread over the pool)."""
    needed = None
    if kind.gpu != "none" and type(kind).gpu_memory is not JobKind.gpu_memory:
        needed = kind.gpu_memory(job.params, sql.job_uploads(job.pk))
    best = None
    for node in nodes:
        if not all(node.can_run(engine) for engine in kind.requires):
            continue
        for slot in free[node.pk]:
            if not _fits(kind, slot, needed):
                continue
            rank = (slot["gpu"] is None, -len(free[node.pk]), node.name, slot["slot"])
            if best is None or rank < best[0]:
                best = (rank, node, slot)
    return None if best is None else (best[1], best[2])


def enqueue(job_id: int, placement: int, queue: str) -> None:
    async_task(
        RUNNER, job_id, placement, cluster=queue, task_name=f"job-{job_id}-{placement}", save=False
    )


def claim(job: Job, node: Node, slot: dict, *, enqueue_it: bool = True) -> bool:
    """Place `job` on `slot` of `node` if nobody placed it meanwhile; the runner's task goes on
    the node's queue once that is committed (unless the caller runs the job itself)."""
    try:
        with transaction.atomic():
            # Only if nobody placed it meanwhile: then its placement number is the one read.
            claimed = sql.update(
                Job,
                "id = %s AND state = %s AND node_id IS NULL AND placement = %s",
                [job.pk, State.QUEUED, job.placement],
                {
                    "node": node.pk,
                    "slot": slot["slot"],
                    "gpu": slot["gpu"],
                    "placed_at": timezone.now(),
                    "placement": job.placement + 1,
                },
            )
            if not claimed:
                return False
            if enqueue_it:
                transaction.on_commit(partial(enqueue, job.pk, job.placement + 1, node.queue))
    except IntegrityError:
        return False  # another scheduler took that slot a moment ago
    return True


def place_queued_jobs(per_user: int = PER_USER) -> int:
    """Put waiting jobs on free slots; returns how many were placed.

    Cheap when nothing can be placed (the pool is full, or nothing waits), which is most
    calls during a burst; otherwise it reads, for each user and priority, only their first
    waiting jobs: enough to choose fairly for the free slots.
    """
    return _place(per_user, keep=None)[0]


def take_next(node_id: int, slot: int, within: float) -> tuple[int, int] | None:
    """A placement pass run by a runner whose job just ended on (`node_id`, `slot`): the job
    placed on that slot, if any, is handed back as (job id, placement) for the runner to run
    at once, without a round trip through the broker; the rest are enqueued as usual. A job
    whose time limit exceeds `within` seconds (what the runner's task has left) goes through
    the broker instead."""
    return _place(PER_USER, keep=(node_id, slot), within=within)[1]


def _place(per_user: int, keep: tuple[int, int] | None, within: float = 0.0):
    """One placement pass: (how many placed, the (job id, placement) kept for the `keep`
    slot's runner, or None)."""
    nodes = available_nodes()
    if not nodes:
        return 0, None
    placed_jobs = sql.jobs_placed([State.QUEUED, State.RUNNING])
    occupied = {(node_id, slot) for node_id, slot, _ in placed_jobs}
    free = {n.pk: [s for s in n.slots() if (n.pk, s["slot"]) not in occupied] for n in nodes}
    slots_free = sum(len(slots) for slots in free.values())
    if not slots_free:
        return 0, None
    waiting = sql.jobs_waiting(State.QUEUED, max(per_user, slots_free))
    if not waiting:
        return 0, None
    placed_per_owner = Counter(owner for _, _, owner in placed_jobs)
    owners = sorted({j.owner_id for j in waiting})
    # Between users level on turns, the one served longest ago goes first.
    last_placed = sql.last_placed(owners) if len(owners) > 1 else {}
    placed, kept = 0, None
    for job in fair_order(waiting, placed_per_owner, last_placed):
        kind = get_kind(job.kind)
        if kind is None:
            transition(
                Job(pk=job.pk), State.FAILED, reason=f"this portal no longer runs '{job.kind}' jobs"
            )
            continue
        choice = choose_slot(kind, job, nodes, free)
        if choice is None:
            continue
        node, slot = choice
        keep_it = (node.pk, slot["slot"]) == keep and job.time_limit + KEEP_MARGIN < within
        if claim(job, node, slot, enqueue_it=not keep_it):
            placed += 1
            if keep_it:
                kept = (job.pk, job.placement + 1)
            log.info("job %s placed on %s slot %s", job.pk, node.name, slot["slot"])
        free[node.pk] = [s for s in free[node.pk] if s["slot"] != slot["slot"]]
        if not any(free.values()):
            break
    return placed, kept


class Placer:
    """Placement on a thread of its own, for a process that answers many requests (the web
    server): one pass places whatever was submitted while the last one ran, and a request
    returns without waiting for it."""

    def __init__(self):
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        self._wanted.set()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="placer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            while self._wanted.wait(timeout=60):
                self._wanted.clear()
                try:
                    place_queued_jobs()
                except Exception:
                    # The scheduler's sweep places what this pass could not.
                    log.exception("placement failed")
        finally:
            connections.close_all()


placer = Placer()


def sweep() -> None:
    """The safety net, run every few seconds by `runscheduler`: re-queue what lost its node,
    re-place what a broker lost, fail what outran its limits unnoticed, then place."""
    now = timezone.now()
    placement_deadline = now - timedelta(seconds=settings.PORTAL_PLACEMENT_TIMEOUT)
    for job in Job.objects.filter(
        state__in=[State.QUEUED, State.RUNNING], node__isnull=False
    ).select_related("node"):
        node = job.node
        if job.state == State.RUNNING:
            if not node.is_online():
                job_requeue(
                    job=job, reason=f"node {node.name} went offline", counts_as_attempt=True
                )
            elif job.node_boot_id and node.boot_id and job.node_boot_id != node.boot_id:
                job_requeue(job=job, reason=f"node {node.name} restarted", counts_as_attempt=True)
            elif not node.enabled:
                job_requeue(job=job, reason=f"node {node.name} was disabled")
            elif job.started_at and now - job.started_at > timedelta(
                seconds=job.time_limit + 5 * 60
            ):
                # The runner should have stopped it; it did not answer.
                transition(
                    job,
                    State.FAILED,
                    reason="ran past its time limit and its runner did not answer",
                    placement=job.placement,
                )
        elif not node.is_online() or not node.enabled:
            job_requeue(job=job, reason=f"node {node.name} is {node.status()}")
        elif job.placed_at and job.placed_at < placement_deadline:
            job_requeue(job=job, reason=f"node {node.name} did not start it in time")
    place_queued_jobs()
