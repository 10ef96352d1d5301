"""Each statement of jobs/sql.py, on whichever database the suite runs on (CI runs it on
PostgreSQL and on SQLite)."""

from datetime import datetime

import pytest
from django.db import connection, transaction

from jobs import sql
from jobs.models import Job, State

pytestmark = [pytest.mark.django_db, pytest.mark.database]


def test_jobs_waiting_gives_each_users_first_jobs_per_priority_by_column(
    submit, alice, erin, make_node
):
    ones = [submit(params={"n": n}) for n in range(3)]
    urgent = submit(params={"n": "u"}, priority="high")
    hers = submit(params={"n": "e"}, by=erin)
    placed = submit(params={"n": "p"})
    Job.objects.filter(pk=placed.pk).update(node=make_node(), slot=0)

    rows = sql.jobs_waiting(State.QUEUED, 2)

    assert sorted(r["id"] for r in rows) == sorted([ones[0].pk, ones[1].pk, urgent.pk, hers.pk])
    row = next(r for r in rows if r["id"] == urgent.pk)
    assert set(row) == {
        "id",
        "kind",
        "owner_id",
        "priority",
        "queued_at",
        "placement",
        "time_limit",
        "gpu_memory",
        "gpu_alone",
        "needs",
    }
    assert (row["kind"], row["owner_id"], row["priority"]) == ("sleep", alice.pk, 2)
    assert row["needs"] == [] and row["gpu_alone"] is False  # decoded as the ORM would
    assert isinstance(row["queued_at"], datetime) and row["queued_at"].tzinfo is not None
    assert row["queued_at"] == Job.objects.get(pk=urgent.pk).queued_at


def test_jobs_placed_gives_the_slots_taken_by_column(submit, make_node, alice):
    node = make_node()
    running, queued, waiting = submit(params={"n": 1}), submit(params={"n": 2}), submit()
    Job.objects.filter(pk=running.pk).update(
        node=node, slot=0, gpu=0, gpu_memory=2**32, gpu_alone=True, state=State.RUNNING
    )
    Job.objects.filter(pk=queued.pk).update(node=node, slot=1)
    assert waiting.node_id is None

    placed = sql.jobs_placed([State.QUEUED, State.RUNNING])
    on = {"node_id": node.pk, "owner_id": alice.pk, "kind": "sleep"}
    first = {**on, "slot": 0, "gpu": 0, "gpu_memory": 2**32, "gpu_alone": True}
    second = {**on, "slot": 1, "gpu": None, "gpu_memory": None, "gpu_alone": False}
    assert sorted(placed, key=lambda r: r["slot"]) == [first, second]
    assert sql.jobs_placed([State.RUNNING]) == [first]


def test_job_locked_reads_a_matching_job_with_its_nodes_name(submit, make_node):
    job = submit()
    with transaction.atomic():
        found = sql.job_locked(job.pk, {"state": State.QUEUED})
        assert found.pk == job.pk and found.locked_node_name is None
    Job.objects.filter(pk=job.pk).update(node=make_node("gpu01"), placement=3)
    with transaction.atomic():
        found = sql.job_locked(job.pk, {"placement": 3, "node_name": "gpu01"})
        assert (found.pk, found.locked_node_name, found.placement) == (job.pk, "gpu01", 3)
        assert sql.job_locked(job.pk, {"placement": 2}) is None
        assert sql.job_locked(job.pk, {"node_name": "other"}) is None


def held_advisory_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        return cursor.fetchone()[0]


# Outside the test's own transaction: what these statements set lasts to the end of one.
@pytest.mark.django_db(transaction=True)
def test_lock_submissions_holds_its_lock_to_the_end_of_the_transaction(project):
    with transaction.atomic():
        sql.lock_submissions(project.pk, "a" * 64)
        if connection.vendor == "postgresql":
            assert held_advisory_locks() == 1
    if connection.vendor == "postgresql":
        assert held_advisory_locks() == 0


@pytest.mark.django_db(transaction=True)
def test_commit_without_waiting_lasts_one_transaction():
    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with transaction.atomic():
        sql.commit_without_waiting()
        if connection.vendor == "postgresql":
            assert setting() == "off"
    if connection.vendor == "postgresql":
        assert setting() == "on"
