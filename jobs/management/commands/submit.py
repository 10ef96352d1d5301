import argparse
import json
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import APIException
from tqdm import tqdm

from jobs.api import submissions_from
from jobs.models import Job, State
from jobs.services import job_submit_batch
from portal.errors import flatten
from portal.uploads.formats import FormatError, load_yaml


class Command(BaseCommand):
    help = (
        "Submit a job from a JSON or YAML file, as `POST /api/v1/jobs/` takes it ({project, "
        "kind, name, params, inputs, priority, force, time_limit}), as --user, and print its id. "
        "With --wait, follow it to its end with a progress bar, and exit 1 unless it succeeded."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the job, as JSON or YAML")
        parser.add_argument("--user", required=True, help="who submits (an editor of the project)")
        parser.add_argument("--wait", action="store_true", help="follow the job to its end")
        parser.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)

    def handle(self, *args, file: Path, user: str, wait: bool, poll: float, **options):
        by = get_user_model().objects.filter(username=user, is_active=True).first()
        if by is None:
            raise CommandError(f"No active user {user}.")
        try:
            text = file.read_bytes()
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        try:
            spec = json.loads(text) if file.suffix == ".json" else load_yaml(text)
        except (ValueError, FormatError) as exc:
            raise CommandError(f"{file} is not JSON or YAML: {exc}") from None
        try:
            submitted = job_submit_batch(submissions_from(by, spec))
        except APIException as exc:
            raise CommandError("; ".join(flatten(exc.detail)) or str(exc)) from None
        for job, created in submitted:
            self.stdout.write(str(job.pk))
            if not created:
                self.stderr.write(f"job {job.pk} was already {job.state} for the same work")
        if wait:
            failed = False
            for job, _ in submitted:
                job = self.follow(job, poll)
                self.stderr.write(f"job {job.pk} {job.state}: {job.transitions.last().reason}")
                if job.state != State.SUCCEEDED:
                    failed = True
                    if job.error:
                        self.stderr.write(job.error.strip().splitlines()[-1])
            if failed:
                raise SystemExit(1)

    def follow(self, job: Job, poll: float) -> Job:
        with tqdm(total=100, unit="%", desc=f"job {job.pk}", file=self.stderr) as bar:
            while True:
                job.refresh_from_db()
                bar.set_postfix_str(f"{job.state} {job.progress_message}"[:60], refresh=False)
                bar.update(job.progress - bar.n)
                if job.is_finished:
                    return job
                time.sleep(poll)
