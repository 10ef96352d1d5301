from django.core.management.base import BaseCommand, CommandError

from jobs.models import Job, State
from jobs.services import job_requeue


class Command(BaseCommand):
    help = (
        "Put jobs back in the queue. Without ids: the running jobs of nodes that are offline "
        "(what the scheduler's sweep does, for when it is not running); each counts as an "
        "attempt, and a job out of attempts fails. With ids: those jobs, if placed or running "
        "(their run is stopped by its runner), as an operator's decision."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="jobs to re-queue")

    def handle(self, *args, ids, **options):
        if ids:
            jobs = list(Job.objects.filter(pk__in=ids).select_related("node"))
            missing = sorted(set(ids) - {job.pk for job in jobs})
            if missing:
                raise CommandError(f"No job {', '.join(map(str, missing))}.")
            requeued = [
                job for job in jobs if job_requeue(job=job, reason="re-queued by an operator")
            ]
            left = [job for job in jobs if job not in requeued]
        else:
            running = Job.objects.filter(state=State.RUNNING, node__isnull=False)
            stale = [job for job in running.select_related("node") if not job.node.is_online()]
            requeued = [
                job
                for job in stale
                if job_requeue(
                    job=job, reason=f"node {job.node.name} is offline", counts_as_attempt=True
                )
            ]
            left = []
        for job in requeued:
            job.refresh_from_db()
            self.stdout.write(f"job {job.pk} ({job.kind}): {job.state}")
        for job in left:
            self.stdout.write(f"job {job.pk} ({job.kind}): {job.state}, nothing to re-queue")
        self.stdout.write(f"{len(requeued)} job(s) re-queued.")
