"""Reading jobs, always through the projects a user belongs to."""

from statistics import median

from django.db.models import F, Q

from jobs.kinds import get_kind
from jobs.models import Job, State
from jobs.placement import waits_for
from portal.projects.models import Role
from portal.projects.selectors import member_object


def jobs_visible_to(user):
    if not user.is_authenticated:
        return Job.objects.none()
    return Job.objects.filter(project__memberships__user=user).select_related(
        "project", "owner", "node"
    )


def job_for(user, job_id, *, role: str = Role.VIEWER) -> Job:
    """A job in one of the user's projects (404 otherwise), if their role allows `role`."""
    return member_object(jobs_visible_to(user), user, job_id, role=role, what="job")


def events_after(job: Job, after: int, limit: int):
    return list(job.events.filter(seq__gt=after).order_by("seq")[:limit])


def queue_place(job: Job) -> tuple[int, float | None]:
    """Where a queued job stands: (how many waiting jobs go before it, plus one; the seconds
    until it starts, roughly, or None with no history). Ahead are the waiting jobs of a
    higher priority, and of its own priority those queued earlier (placement also takes turns
    between users, so this is an upper bound for a user with few jobs). The estimate is the
    median run of the kind's last 20 finished jobs, times the rounds of the pool's slots that
    must run first."""
    from nodes.selectors import nodes_available

    ahead = (
        Job.objects.filter(state=State.QUEUED, node__isnull=True)
        .filter(
            Q(priority__gt=job.priority) | Q(priority=job.priority, queued_at__lt=job.queued_at)
        )
        .exclude(pk=job.pk)
        .count()
    )
    runs = [
        (j.finished_at - j.started_at).total_seconds()
        for j in Job.objects.filter(
            kind=job.kind,
            state=State.SUCCEEDED,
            started_at__isnull=False,
            finished_at__gt=F("started_at"),
        ).order_by("-finished_at")[:20]
    ]
    # A GPU's lanes count for the kinds that share it; for the others, a GPU is one slot.
    kind = get_kind(job.kind)
    shares = kind is not None and kind.shares_gpu
    slots = sum(
        len(node.slots()) if shares else len(node.gpus or []) + node.cpu_slots
        for node in nodes_available()
    )
    if not runs or not slots:
        return ahead + 1, None
    return ahead + 1, median(runs) * (ahead // slots + 1)


def waiting(job: Job) -> str:
    """Where a waiting job stands and what it waits for, as its page and the API say it ("" for
    a job that is not waiting to be placed)."""
    if job.state != State.QUEUED or job.node_id:
        return ""
    place, seconds = queue_place(job)
    text = f"waiting: number {place} in the queue"
    if reason := waits_for(job):
        # Then the wait is the running jobs' to end, which the estimate below does not know.
        return f"{text}, {reason}"
    if seconds is not None:
        minutes = round(seconds / 60)
        text += f", starting in about {f'{minutes} min' if minutes else 'a minute or less'}"
    return text
