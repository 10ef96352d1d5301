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
from django.db.models import Max, Q
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
    gpu_alone: bool
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


def engine_of(kind) -> str | None:
    """The engine class a kind's jobs run in (two kinds may share one: a prediction's and an
    affinity job's), as the node reports its warm engines; None for a kind without one."""
    return getattr(kind, "engine", None) or None


def runs_alone(kind, gpu_memory: int | None, gpu_alone: bool) -> bool:
    """Whether a job must have its GPU to itself: its kind does not share a GPU, it has no
    memory estimate to share by, or it ran out of memory beside others once."""
    return not kind.shares_gpu or not gpu_memory or bool(gpu_alone)


def room_needed(kind, gpu_memory: int | None, gpu_alone: bool) -> int | None:
    """The GPU memory to make room for before a job starts (see jobs/engine_client.py:
    `make_room`): its estimate; None, all of it, for a job that takes the whole GPU or runs
    again alone after running out of memory."""
    return None if kind.whole_gpu or gpu_alone else gpu_memory


@dataclass(slots=True)
class Lane:
    """A job placed on a GPU's lane: its slot, and what it takes of the GPU."""

    slot: int
    memory: int  # its estimate, 0 if none
    alone: bool


class GpuUse:
    """What the pool's GPUs hold in one placement pass: the jobs placed on each GPU's lanes,
    and the memory the engines warm on each lane hold (as the nodes last reported them)."""

    def __init__(self, nodes: list[Node], placed_jobs: list[dict]):
        self.slots = {node.pk: node.slots() for node in nodes}
        self.busy: dict[tuple[int, int], list[Lane]] = {}
        # GPUs held in this pass for a waiting job that needs them emptier (`hold_a_gpu`).
        self.held_for: dict[tuple[int, int], int] = {}
        self.held = {
            (node_id, slot["slot"]): slot["warm"]
            for node_id, slots in self.slots.items()
            for slot in slots
        }
        for row in placed_jobs:
            kind = get_kind(row["kind"])
            if row["gpu"] is not None:
                alone = kind is None or runs_alone(kind, row["gpu_memory"], row["gpu_alone"])
                self.add(row["node_id"], row["gpu"], row["slot"], row["gpu_memory"], alone)

    def add(self, node_id: int, gpu: int, slot: int, memory: int | None, alone: bool) -> None:
        self.busy.setdefault((node_id, gpu), []).append(Lane(slot, memory or 0, alone))

    def lanes_busy(self, node_id: int, gpu: int) -> list[Lane]:
        return self.busy.get((node_id, gpu), [])

    def in_use(self, node_id: int, gpu: int) -> int:
        """Memory the GPU's placed jobs take: on each of their lanes, the job's estimate or
        what the lane's engines hold, whichever is more (an estimate counts the model too)."""
        return sum(
            max(lane.memory, sum(self.held.get((node_id, lane.slot), {}).values()))
            for lane in self.lanes_busy(node_id, gpu)
        )

    def idle_held(self, node: Node, slot: dict, engine: str | None) -> int:
        """Memory held on the GPU by engines no placed job uses, the slot's engine for the
        job's own engine class aside: what `make_room` (jobs/engine_client.py) would stop."""
        busy = {lane.slot for lane in self.lanes_busy(node.pk, slot["gpu"])}
        return sum(
            held
            for other in self.slots[node.pk]
            if other["gpu"] == slot["gpu"] and other["slot"] not in busy
            for name, held in other["warm"].items()
            if not (other["slot"] == slot["slot"] and name == engine)
        )


def _fits(kind, job, node: Node, slot: dict, use: GpuUse) -> bool:
    """Whether the slot can take the job: the kind's GPU rule; a job with a memory estimate
    only on a GPU that large (or, where a node has no GPU at all, on its CPU slots); and on a
    GPU other jobs run on, only a job that shares, beside jobs that share, whose estimate fits
    with theirs and PORTAL_GPU_HEADROOM (the engine warm on the lane counting as its own)."""
    needed = job.gpu_memory
    if kind.gpu == "required" and slot["gpu"] is None:
        return False
    if kind.gpu == "none" and slot["gpu"] is not None:
        return False
    if slot["gpu"] is None:
        return not (needed and node.gpus)
    total = slot["memory"] or 0
    if needed and total < needed:
        return False
    busy = use.lanes_busy(node.pk, slot["gpu"])
    if not busy:
        return True
    if runs_alone(kind, needed, job.gpu_alone) or any(lane.alone for lane in busy):
        return False
    own = slot["warm"].get(engine_of(kind), 0)
    in_use = use.in_use(node.pk, slot["gpu"])
    return in_use + max(needed, own) + settings.PORTAL_GPU_HEADROOM <= total


def _crowded(kind, job, node: Node, slot: dict, use: GpuUse) -> bool:
    """Whether the job would fit only once idle engines on its GPU are stopped (their memory
    counts as used; see jobs/engine_client.py: `make_room`). Without an estimate, any such
    engine holding memory is in the way."""
    if slot["gpu"] is None:
        return False
    idle = use.idle_held(node, slot, engine_of(kind))
    if not idle:
        return False
    needed = room_needed(kind, job.gpu_memory, job.gpu_alone)
    if not needed:
        return True
    busy = use.lanes_busy(node.pk, slot["gpu"])
    own = slot["warm"].get(engine_of(kind), 0)
    headroom = settings.PORTAL_GPU_HEADROOM if busy else 0
    in_use = use.in_use(node.pk, slot["gpu"])
    return in_use + idle + max(needed, own) + headroom > (slot["memory"] or 0)


def choose_slot(kind, job: Job, nodes: list[Node], free: dict[int, list[dict]], use: GpuUse):
    """The best free slot for a job: a GPU first when the kind can use one; then a slot whose
    engine for the kind is warm; then one where the job fits without stopping idle engines;
    then a GPU running fewer jobs (jobs spread over the GPUs before they share one); then the
    node with most free slots (jobs spread over the pool)."""
    engine = engine_of(kind)
    best = None
    for node in nodes:
        if not all(node.can_run(name) for name in (*kind.requires, *job.needs)):
            continue
        for slot in free[node.pk]:
            if (node.pk, slot["gpu"]) in use.held_for or not _fits(kind, job, node, slot, use):
                continue
            sharing = len(use.lanes_busy(node.pk, slot["gpu"])) if slot["gpu"] is not None else 0
            rank = (
                slot["gpu"] is None,
                engine not in slot["warm"],
                _crowded(kind, job, node, slot, use),
                sharing,
                -len(free[node.pk]),
                node.name,
                slot["slot"],
            )
            if best is None or rank < best[0]:
                best = (rank, node, slot)
    return None if best is None else (best[1], best[2])


def hold_a_gpu(kind, job, nodes: list[Node], use: GpuUse) -> None:
    """For a job that fits no GPU now but would fit one once it empties, hold, for the rest of
    the pass, the GPU large enough that runs the fewest jobs: no job later in the order is put
    beside them, so it empties. Without it, a large job would wait for as long as smaller ones
    keep fitting beside the running ones."""
    if kind.gpu == "none":
        return
    needed = job.gpu_memory or 0
    candidates = [
        (len(use.lanes_busy(node.pk, slot["gpu"])), node.name, node.pk, slot["gpu"])
        for node in nodes
        if all(node.can_run(name) for name in (*kind.requires, *job.needs))
        for slot in use.slots[node.pk]
        if slot["gpu"] is not None
        and slot["lane"] == 0
        and (slot["memory"] or 0) >= needed
        and (node.pk, slot["gpu"]) not in use.held_for
    ]
    if candidates:
        _, _, node_id, gpu = min(candidates)
        use.held_for[(node_id, gpu)] = job.pk


def waits_for(job: Job) -> str:
    """What keeps a waiting job from a slot, in words for its page ("for a GPU with 4.5 GiB
    free"); "" when a free slot would take it now (the next pass places it, or the jobs ahead
    of it take the free slots)."""
    kind = get_kind(job.kind)
    if kind is None:
        return ""
    up = nodes_available()
    nodes = [node for node in up if all(node.can_run(n) for n in (*kind.requires, *job.needs))]
    if not up:
        return "for a node: none is up"
    if not nodes:
        return "for a node that can run it: none of those up can"
    placed_jobs = sql.jobs_placed([State.QUEUED, State.RUNNING])
    occupied = {(j["node_id"], j["slot"]) for j in placed_jobs}
    use, empty = GpuUse(nodes, placed_jobs), GpuUse(nodes, [])
    slots = [(node, slot) for node in nodes for slot in use.slots[node.pk]]
    free = [(node, slot) for node, slot in slots if (node.pk, slot["slot"]) not in occupied]
    if any(_fits(kind, job, node, slot, use) for node, slot in free):
        return _behind(job, free, use)
    # The slots that could take it in an empty pool say what it waits for.
    could = [slot for node, slot in slots if _fits(kind, job, node, slot, empty)]
    if not could or any(slot["gpu"] is None for slot in could):
        return "for a free slot"
    if runs_alone(kind, job.gpu_memory, job.gpu_alone):
        return "for a GPU of its own"
    return f"for a GPU with {job.gpu_memory / 2**30:.1f} GiB free"


def _behind(job: Job, free: list, use: GpuUse) -> str:
    """Why a job a free slot would take is not placed: a job before it in the queue that fits
    no free slot has a GPU kept for it to empty (`hold_a_gpu`), and the job then waits behind
    it; "" otherwise (a pass is due)."""
    ahead = (
        Job.objects.filter(state=State.QUEUED, node__isnull=True)
        .filter(
            Q(priority__gt=job.priority) | Q(priority=job.priority, queued_at__lt=job.queued_at)
        )
        .exclude(pk=job.pk)
        .order_by("-priority", "queued_at")[:PER_USER]
    )
    for other in ahead:
        kind = get_kind(other.kind)
        if kind is None or kind.gpu == "none":
            continue
        runs = [
            (node, slot)
            for node, slot in free
            if all(node.can_run(name) for name in (*kind.requires, *other.needs))
        ]
        if runs and not any(_fits(kind, other, node, slot, use) for node, slot in runs):
            return f"behind job #{other.pk}, for which a GPU is kept until it empties"
    return ""


def enqueue(job_id: int, placement: int, queue: str) -> None:
    async_task(
        RUNNER, job_id, placement, cluster=queue, task_name=f"job-{job_id}-{placement}", save=False
    )


def _still_fits(kind, job, node: Node, slot: dict) -> bool:
    """Whether the job still fits the slot's GPU beside the jobs placed on it now (another
    pass may have placed one on another of its lanes since this pass read them)."""
    placed = Job.objects.filter(
        node_id=node.pk, gpu=slot["gpu"], state__in=[State.QUEUED, State.RUNNING]
    ).values("node_id", "slot", "gpu", "kind", "gpu_memory", "gpu_alone")
    return _fits(kind, job, node, slot, GpuUse([node], list(placed)))


def claim(job: Job, node: Node, slot: dict, kind=None) -> bool:
    """Place `job` on `slot` of `node` if nobody placed it meanwhile. On a GPU, one claim at a
    time per node (its row locked), which checks again that the job fits beside the jobs its
    GPU's other lanes hold: the unique (node, slot) index keeps one job a lane, not a GPU's
    memory."""
    try:
        with transaction.atomic():
            if slot["gpu"] is not None and kind is not None:
                Node.objects.select_for_update().filter(pk=node.pk).first()
                if not _still_fits(kind, job, node, slot):
                    return False
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
    use = GpuUse(nodes, placed_jobs)
    free = {n.pk: [s for s in use.slots[n.pk] if (n.pk, s["slot"]) not in occupied] for n in nodes}
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
        choice = choose_slot(kind, job, nodes, free, use)
        if choice is None:
            if any(slot["gpu"] is not None for slots in free.values() for slot in slots):
                hold_a_gpu(kind, job, nodes, use)
            continue
        node, slot = choice
        if claim(job, node, slot, kind):
            placed += 1
            if slot["gpu"] is not None:
                alone = runs_alone(kind, job.gpu_memory, job.gpu_alone)
                use.add(node.pk, slot["gpu"], slot["slot"], job.gpu_memory, alone)
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
