"""Operators in the Django admin: node and job actions, each leaving an audit trail."""

import pytest
from django.contrib.admin.models import LogEntry

from jobs.models import Job, State

pytestmark = [pytest.mark.django_db, pytest.mark.database]


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", password="ops-password")
    client.force_login(user)
    return user


def test_an_operator_disables_drains_and_enables_nodes(client, operator, make_node):
    node = make_node("gpu01")
    for action, expected in [("disable", "disabled"), ("enable", "idle"), ("drain", "draining")]:
        response = client.post(
            "/admin/nodes/node/", {"action": action, "_selected_action": [node.pk]}, follow=True
        )
        assert response.status_code == 200
        node.refresh_from_db()
        assert node.status() == expected
    trail = [e.change_message for e in LogEntry.objects.filter(user=operator).order_by("id")]
    assert trail == ["disabled the node", "enabled the node", "drained the node"]
    page = client.get("/admin/nodes/node/")
    assert b"gpu01" in page.content and b"draining" in page.content


def test_an_operator_cancels_and_reprioritises_jobs_and_the_trail_names_them(
    client, operator, submit
):
    waiting, other = submit(params={"n": 1}), submit(params={"n": 2})
    client.post(
        "/admin/jobs/job/", {"action": "priority_high", "_selected_action": [other.pk]}, follow=True
    )
    client.post(
        "/admin/jobs/job/", {"action": "cancel", "_selected_action": [waiting.pk]}, follow=True
    )
    waiting.refresh_from_db()
    other.refresh_from_db()
    assert waiting.state == State.CANCELLED and other.priority_name == "high"
    last = waiting.transitions.last()
    assert (last.reason, last.by) == ("cancelled by ops", operator)
    assert LogEntry.objects.filter(user=operator, object_id=str(waiting.pk)).exists()
    # A finished job re-queued runs anew as a copy.
    client.post(
        "/admin/jobs/job/", {"action": "requeue", "_selected_action": [waiting.pk]}, follow=True
    )
    assert Job.objects.filter(state=State.QUEUED, params={"n": 1}).exclude(pk=waiting.pk).exists()
    assert b"Alice" in client.get(f"/admin/jobs/job/{waiting.pk}/change/").content
