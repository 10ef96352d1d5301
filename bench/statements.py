"""What the plain SQL of jobs/sql.py saves, statement by statement.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/statements.py

On a throwaway database beside DATABASE_URL (or SQLite without it), it first runs JOBS trivial
jobs the whole way in this process (submission, placement, the runner with its real process,
output, end, hand-over) and counts how often each statement runs per job. Then it times each
statement as jobs/sql.py writes it and as the ORM query it stands for, in this process's CPU
(the database's own work is the same either way), and prints what the ORM would add per job.
jobs/sql.py's docstring has the figures of the profile that chose them.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def setup():
    from bench.dispatch import throwaway_database

    work = Path(tempfile.mkdtemp(prefix="portal-statements-"))
    database = throwaway_database()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "PORTAL_WORKDIR": str(work),
            "PORTAL_JOB_KIND_MODULES": "bench.kinds",
            "REDIS_URL": "",
            **({"DATABASE_URL": database[0]} if database else {}),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return work, database


def world():
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from nodes.models import Node
    from nodes.services import node_create
    from portal.projects.services import project_create

    user = get_user_model().objects.create_user("bench")
    project = project_create(name="bench", by=user)
    node, _ = node_create(name="bench", cpu_slots=1)
    # Online for the length of the run, without an agent.
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() + timedelta(days=1))
    settings.PORTAL_NODE_NAME, settings.PORTAL_NODE_BOOT_ID = "bench", "boot"
    return user, project, node


def count_calls(jobs: int, user, project) -> Counter:
    """Run `jobs` trivial jobs in this process, counting each jobs/sql.py statement."""
    from jobs import placement, sql
    from jobs.runner import run_job
    from jobs.services import job_submit

    counts = Counter()
    originals = {
        name: function
        for name, function in vars(sql).items()
        if callable(function) and not name.startswith("_") and function.__module__ == "jobs.sql"
    }
    for name, function in originals.items():

        def counted(*args, _name=name, _function=function, **kwargs):
            counts[_name] += 1
            return _function(*args, **kwargs)

        setattr(sql, name, counted)
    enqueued = []
    placement.enqueue = lambda *args: enqueued.append(args)
    try:
        for n in range(jobs):
            job_submit(project=project, by=user, kind="noop", params={"n": n}, inputs=[])
            while enqueued:
                run_job(*enqueued.pop(0)[:2])
    finally:
        for name, function in originals.items():
            setattr(sql, name, function)
    return counts


def cpu_per_call(function, calls: int) -> float:
    """Microseconds of this process's CPU per call, inside a transaction rolled back after."""
    from django.db import transaction

    class Undo(Exception):
        pass

    try:
        with transaction.atomic():
            function()  # warm caches, as a long-lived process has them
            begin = time.process_time()
            for _ in range(calls):
                function()
            spent = time.process_time() - begin
            raise Undo
    except Undo:
        pass
    return spent / calls * 1e6


def pairs(user, project, node):
    """The statements kept in jobs/sql.py, as they are and as the ORM would write them."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    from jobs import sql
    from jobs.models import Job, State
    from jobs.services import job_submit

    job, _ = job_submit(project=project, by=user, kind="noop", params={"n": -1}, inputs=[])
    Job.objects.filter(pk=job.pk).update(state=State.RUNNING, node=node, slot=0, placement=1)

    def orm_waiting():
        turn = Window(
            RowNumber(),
            partition_by=[F("owner_id"), F("priority")],
            order_by=[F("queued_at").asc(), F("id").asc()],
        )
        return list(
            Job.objects.filter(state=State.QUEUED, node__isnull=True)
            .annotate(turn=turn)
            .filter(turn__lte=20)
            .values("id", "kind", "owner_id", "priority", "queued_at", "placement")
        )

    return {
        "jobs_waiting": (lambda: sql.jobs_waiting(State.QUEUED, 20), orm_waiting),
        "jobs_placed": (
            lambda: sql.jobs_placed([State.QUEUED, State.RUNNING]),
            lambda: list(
                Job.objects.filter(
                    node__isnull=False, state__in=[State.QUEUED, State.RUNNING]
                ).values("node_id", "slot", "owner_id")
            ),
        ),
        "job_locked": (
            lambda: sql.job_locked(job.pk, {"placement": 1, "node_name": "bench"}),
            lambda: (
                Job.objects.select_for_update(of=("self",))
                .annotate(locked_node_name=F("node__name"))
                .filter(pk=job.pk, placement=1, node__name="bench")
                .first()
            ),
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    work, database = setup()
    try:
        from django.db import connection

        user, project, node = world()
        counts = count_calls(args.jobs, user, project)
        print(f"\n{connection.vendor}: {args.jobs} trivial jobs run in this process\n")
        print(f"{'statement':<16}{'per job':>8}{'plain SQL':>12}{'ORM':>10}{'ORM adds':>16}")
        total = 0.0
        for name, (plain, orm) in pairs(user, project, node).items():
            per_job = counts[name] / args.jobs
            raw_us, orm_us = cpu_per_call(plain, args.calls), cpu_per_call(orm, args.calls)
            extra = (orm_us - raw_us) * per_job / 1000
            total += extra
            print(
                f"{name:<16}{per_job:>8.1f}{raw_us:>9.0f} µs{orm_us:>7.0f} µs{extra:>10.2f} ms/job"
            )
        print(f"\nplain SQL saves {total:.1f} ms of CPU per job (see jobs/sql.py)")
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(work, ignore_errors=True)
        if database:
            database[1]()


if __name__ == "__main__":
    main()
