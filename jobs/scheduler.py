"""The scheduler's sweep, the safety net `manage.py runscheduler` runs every few seconds:
re-queue what lost its node, re-place what a broker lost, fail what outran its limits
unnoticed, move on pending jobs whose children all ended, then place (jobs/placement.py)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.lifecycle import transition
from jobs.models import ACTIVE, Job, State
from jobs.placement import place_queued_jobs
from jobs.services import job_children_ended, job_requeue

log = logging.getLogger(__name__)


def sweep() -> None:
    """The safety net, run every few seconds by `runscheduler`: re-queue what lost its node,
    re-place what a broker lost, fail what outran its limits unnoticed, move on pending jobs
    whose children all ended (their end's own call was lost), then place."""
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
    waiting = Job.objects.filter(state=State.PENDING, children__isnull=False)
    ended = waiting.exclude(children__state__in=ACTIVE).values_list("id", flat=True)
    for job_id in ended.distinct():
        job_children_ended(job_id)
    place_queued_jobs()
