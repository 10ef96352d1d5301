"""Reading jobs, always through the projects a user belongs to."""

from jobs.models import Job
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
