"""A queued job's page says where it stands in the queue and when it may start."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, State
from nodes.models import Node

pytestmark = pytest.mark.django_db


def test_a_queued_job_shows_its_place_and_an_estimate(client, alice, project, submit):
    # No node yet: the jobs wait, in the order they came.
    jobs = [submit(params={"seconds": n + 1}) for n in range(4)]
    assert all(job.state == State.QUEUED and job.node_id is None for job in jobs)
    client.force_login(alice)
    page = client.get(f"/jobs/{jobs[3].pk}/").content.decode()
    assert "waiting: number 4 in the queue" in page
    assert "starting in about" not in page  # no node, and no history of the kind

    # A node of one slot (recorded as its heartbeat would, placing nothing now), and a history:
    # the kind's runs take a minute, so each job ahead is a minute's wait.
    Node.objects.create(name="n1", cpu_slots=1, last_heartbeat_at=timezone.now())
    now = timezone.now()
    for _ in range(3):
        Job.objects.create(
            project=project,
            owner=alice,
            kind="sleep",
            state=State.SUCCEEDED,
            started_at=now - timedelta(seconds=60),
            finished_at=now,
        )
    page = client.get(f"/jobs/{jobs[3].pk}/").content.decode()
    assert "waiting: number 4 in the queue, starting in about 4 min" in page
    page = client.get(f"/jobs/{jobs[0].pk}/").content.decode()
    assert "waiting: number 1 in the queue, starting in about 1 min" in page
