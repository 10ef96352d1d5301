"""Placement: choosing a free slot for each waiting job, and claiming it.

`place_queued_jobs()` runs when a job is submitted or goes back to the queue, when a node
becomes available, and on every sweep; `hand_over()` when a runner's job leaves its slot.
Several passes may run at once (web processes, runners, the scheduler): a placement is claimed
with a conditional UPDATE on the job and a unique index on (node, slot), so a job is placed
once and a slot holds one job. This module changes jobs only through their record
(jobs/lifecycle.py) and asks nothing of the services, which ask it for passes.
"""

import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Max
from django.utils import timezone
from django_q.tasks import async_task

from jobs import sql
from jobs.kinds import get_kind
from jobs.lifecycle import transition
from jobs.models import Job, State
from nodes.models import Node
from nodes.selectors import nodes_available

log = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"
# Seconds a runner's task keeps in hand beyond a job's time limit before it takes that job on.
KEEP_MARGIN = 600
# How many of each user's first waiting jobs (per priority) a placement pass reads at least.
PER_USER = 20


@dataclass(slots=True)
class Waiting:
    """What a placement pass needs of a waiting job (no model instance: a pass reads many)."""

    id: int
    kind: str
    owner_id: int
    priority: int
    queued_at: object
    placement: int
    time_limit: int
    gpu_memory: int | None
    needs: list[str]

    @property
    def pk(self) -> int:
        return self.id


def _last_placed(owners: list[int]) -> dict:
    """When each of these users last had a job placed."""
    return dict(
        Job.objects.filter(owner_id__in=owners, placed_at__isnull=False)
        .values_list("owner_id")
        .annotate(last=Max("placed_at"))
    )


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


def _fits(kind, slot: dict, needed: int | None, node_has_gpus: bool) -> bool:
    """Whether the slot can take the job: the kind's GPU rule, and a job with a memory estimate
    only on a GPU that large (or, where a node has no GPU at all, on its CPU slots)."""
    if kind.gpu == "required" and slot["gpu"] is None:
        return False
    if kind.gpu == "none" and slot["gpu"] is not None:
        return False
    if needed and slot["gpu"] is None and node_has_gpus:
        return False
    if needed and slot["gpu"] is not None and (slot["memory"] or 0) < needed:
        return False
    return True


def _crowded(kind, slot: dict, needed: int | None) -> bool:
    """Whether the job would not fit beside the engines of other kinds warm on the slot's GPU
    (their memory counts as used), so that the runner would have to stop them first (see
    jobs/engine_client.py: `make_room`). Without an estimate, any such engine is in the way."""
    others = sum(held for name, held in slot["warm"].items() if name != kind.name)
    if slot["gpu"] is None or not others:
        return False
    return not needed or needed + others > (slot["memory"] or 0)


def choose_slot(kind, job: Job, nodes: list[Node], free: dict[int, list[dict]]):
    """The best free slot for a job: a GPU first when the kind can use one; then a slot whose
    engine for the kind is warm; then one where the job fits beside the warm engines of other
    kinds; then the node with most free slots (jobs spread over the pool)."""
    needed = job.gpu_memory
    best = None
    for node in nodes:
        if not all(node.can_run(engine) for engine in (*kind.requires, *job.needs)):
            continue
        for slot in free[node.pk]:
            if not _fits(kind, slot, needed, bool(node.gpus)):
                continue
            rank = (
                slot["gpu"] is None,
                kind.name not in slot["warm"],
                _crowded(kind, slot, needed),
                -len(free[node.pk]),
                node.name,
                slot["slot"],
            )
            if best is None or rank < best[0]:
                best = (rank, node, slot)
    return None if best is None else (best[1], best[2])


def enqueue(job_id: int, placement: int, queue: str) -> None:
    async_task(
        RUNNER, job_id, placement, cluster=queue, task_name=f"job-{job_id}-{placement}", save=False
    )


def claim(job: Job, node: Node, slot: dict) -> bool:
    """Place `job` on `slot` of `node` if nobody placed it meanwhile."""
    try:
        with transaction.atomic():
            # Only if nobody placed it meanwhile: then its placement number is the one read.
            claimed = Job.objects.filter(
                pk=job.pk, state=State.QUEUED, node__isnull=True, placement=job.placement
            ).update(
                node=node,
                slot=slot["slot"],
                gpu=slot["gpu"],
                placed_at=timezone.now(),
                placement=job.placement + 1,
            )
            if not claimed:
                return False
    except IntegrityError:
        return False  # another scheduler took that slot a moment ago
    return True


def place_queued_jobs(per_user: int = PER_USER) -> int:
    """Put waiting jobs on free slots, each placed job's task on its node's queue; returns how
    many were placed.

    Cheap when nothing can be placed (the pool is full, or nothing waits), which is most
    calls during a burst; otherwise it reads, for each user and priority, only their first
    waiting jobs: enough to choose fairly for the free slots.
    """
    return _place(per_user, freed=None)[0]


@dataclass(frozen=True)
class FreedSlot:
    """The slot a runner's job just left, and how long the runner's task has left to run."""

    node_id: int
    slot: int
    within: float  # seconds


def hand_over(freed: FreedSlot) -> tuple[int, int] | None:
    """The placement pass a runner makes when its job leaves a slot. The job placed on that
    slot comes back as (job id, placement) for the runner to run at once, without a round trip
    through the broker; jobs placed elsewhere go through the broker as usual, and so does one
    whose time limit exceeds what the runner's task has left."""
    return _place(PER_USER, freed=freed)[1]


def _place(per_user: int, freed: FreedSlot | None) -> tuple[int, tuple[int, int] | None]:
    """One placement pass: (how many placed, the job kept for the freed slot's runner)."""
    nodes = nodes_available()
    if not nodes:
        return 0, None
    placed_jobs = sql.jobs_placed([State.QUEUED, State.RUNNING])
    occupied = {(j["node_id"], j["slot"]) for j in placed_jobs}
    free = {n.pk: [s for s in n.slots() if (n.pk, s["slot"]) not in occupied] for n in nodes}
    slots_free = sum(len(slots) for slots in free.values())
    if not slots_free:
        return 0, None
    waiting = [Waiting(**row) for row in sql.jobs_waiting(State.QUEUED, max(per_user, slots_free))]
    if not waiting:
        return 0, None
    placed_per_owner = Counter(j["owner_id"] for j in placed_jobs)
    owners = sorted({j.owner_id for j in waiting})
    # Between users level on turns, the one served longest ago goes first.
    last_placed = _last_placed(owners) if len(owners) > 1 else {}
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
        if claim(job, node, slot):
            placed += 1
            log.info("job %s placed on %s slot %s", job.pk, node.name, slot["slot"])
            if (
                freed is not None
                and (node.pk, slot["slot"]) == (freed.node_id, freed.slot)
                and job.time_limit + KEEP_MARGIN < freed.within
            ):
                kept = (job.pk, job.placement + 1)
            else:
                transaction.on_commit(partial(enqueue, job.pk, job.placement + 1, node.queue))
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


def place_soon() -> None:
    """A placement pass for what was just committed: on the placer's thread in the web server
    (PORTAL_PLACE_IN_BACKGROUND, so a request does not wait for it), else at once."""
    if settings.PORTAL_PLACE_IN_BACKGROUND:
        placer.request()
    else:
        place_queued_jobs()
