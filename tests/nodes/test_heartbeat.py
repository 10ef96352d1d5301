import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from nodes.models import Node
from nodes.services import node_create

pytestmark = [pytest.mark.django_db, pytest.mark.database]

REPORT = {
    "boot_id": "3f2a",
    "hostname": "gpu01",
    "gpus": [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory_total": 85_000_000_000,
            "memory_used": 1_000_000_000,
            "utilization": 12,
            "temperature": 41,
        }
    ],
    "cpu_percent": 7.5,
    "memory_total": 128_000_000_000,
    "memory_used": 9_000_000_000,
    "engines": {"torch": {"version": "2.13.0", "ready": True, "cuda": True}},
}


def beat(token, report=REPORT):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Node {token}")
    return client.post("/api/v1/nodes/heartbeat/", report, format="json")


def test_createnode_prints_only_the_token_and_stores_its_hash(db):
    out = StringIO()
    call_command("createnode", "gpu01", "--cpu-slots", "2", stdout=out)
    token = out.getvalue().strip()
    node = Node.objects.get(name="gpu01")
    assert token.startswith("spn_") and " " not in token
    assert token not in node.token_hash and node.queue == "node-gpu01" and node.cpu_slots == 2
    assert beat(token).status_code == 200


def test_createnode_refuses_a_bad_or_taken_name(db):
    call_command("createnode", "gpu01", stdout=StringIO())
    with pytest.raises(Exception, match="exists already"):
        call_command("createnode", "gpu01", stdout=StringIO())
    with pytest.raises(Exception, match="lower-case letters"):
        call_command("createnode", "GPU 01/..", stdout=StringIO())


def test_a_heartbeat_records_what_the_agent_reports(db):
    node, token = node_create(name="gpu01")
    response = beat(token)
    assert response.status_code == 200
    assert response.json()["queue"] == "node-gpu01" and response.json()["slots"] == 2
    node.refresh_from_db()
    assert node.gpus[0]["name"] == "NVIDIA H100 80GB HBM3"
    assert node.hostname == "gpu01" and node.address == "127.0.0.1"
    assert node.engines["torch"]["ready"] and node.status() == "idle"
    assert [s["gpu"] for s in node.slots()] == [0, None]


def test_a_heartbeat_with_a_bad_token_gets_401_and_a_log_line(db, caplog):
    node_create(name="gpu01")
    with caplog.at_level(logging.WARNING, logger="nodes.heartbeat"):
        response = beat("spn_not-a-real-token")
    assert response.status_code == 401
    assert response.json()["code"] == "node_token_invalid"
    assert "heartbeat refused" in caplog.text and "127.0.0.1" in caplog.text
    assert beat("").status_code == 401
    assert Node.objects.get().last_heartbeat_at is None


def test_a_malformed_report_is_refused_and_changes_nothing(db):
    node, token = node_create(name="gpu01")
    bad = {**REPORT, "gpus": [{"index": -1, "name": "x", "memory_total": "lots", "memory_used": 0}]}
    response = beat(token, bad)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    node.refresh_from_db()
    assert node.gpus == [] and node.last_heartbeat_at is None


def test_a_node_is_offline_90_seconds_after_its_last_heartbeat(db):
    node, token = node_create(name="gpu01")
    beat(token)
    node.refresh_from_db()
    assert node.status() == "idle"
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=89))
    node.refresh_from_db()
    assert node.status() == "idle"
    Node.objects.filter(pk=node.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=91))
    node.refresh_from_db()
    assert node.status() == "offline"


def test_node_status_says_disabled_draining_busy(db):
    node, token = node_create(name="gpu01")
    beat(token)
    node.refresh_from_db()
    assert node.status(busy=True) == "busy"
    node.draining = True
    assert node.status() == "draining"
    node.enabled = False
    assert node.status() == "disabled"


def test_only_staff_list_nodes(db, alice, api, django_user_model):
    node_create(name="gpu01")
    assert api(alice).get("/api/v1/nodes/").status_code == 403
    staff = django_user_model.objects.create_user("ops", is_staff=True)
    listed = api(staff).get("/api/v1/nodes/").json()["results"]
    assert [(n["name"], n["status"], n["running_jobs"]) for n in listed] == [
        ("gpu01", "offline", 0)
    ]
