"""`Portal.submit`: one job or a batch, each under an Idempotency-Key, so that sending it again
(by hand, or a retry after a lost answer) creates nothing twice."""

import pytest
from portal_client import Portal

from jobs.models import Job

pytestmark = pytest.mark.slow


def spec(project, n: int) -> dict:
    # `force`: without it the portal would answer an equal job already queued by itself.
    return {"project": project.pk, "kind": "sleep", "params": {"n": n}, "force": True}


def test_a_batch_sent_twice_with_one_key_creates_its_jobs_once(portal_server, project, alice_key):
    portal = Portal(portal_server.url, alice_key)
    batch = [spec(project, 1), spec(project, 2)]

    first = portal.submit(batch, idempotency_key="batch-1")
    again = portal.submit(batch, idempotency_key="batch-1")

    assert [job["id"] for job in again] == [job["id"] for job in first]
    assert Job.objects.count() == 2
    portal.submit(batch)  # a new key: new jobs
    assert Job.objects.count() == 4


def test_a_submission_whose_answer_is_lost_is_retried_without_a_second_job(
    portal_server, project, alice_key, proxy_to
):
    proxy = proxy_to(portal_server.url)
    portal = Portal(proxy.url, alice_key)
    proxy.drop_next_response()

    job = portal.submit(spec(project, 3))

    assert proxy.upstream.count(b"POST /api/v1/jobs/ HTTP/1.1") == 2  # sent, lost, sent again
    assert list(Job.objects.values_list("pk", flat=True)) == [job["id"]]
