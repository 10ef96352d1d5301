"""`Portal.follow` and `wait` against the whole pool, and the `portal` command on top."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from portal_client import Portal

pytestmark = pytest.mark.slow

PORTAL_COMMAND = Path(sys.executable).parent / "portal"


def test_follow_carries_on_after_dropped_connections_missing_and_doubling_nothing(
    orm_stack, project, alice_key, proxy_to
):
    orm_stack.add_nodes("n1")
    proxy = proxy_to(orm_stack.url)
    portal = Portal(proxy.url, alice_key)
    job = portal.submit(
        {"project": project.pk, "kind": "sleep", "params": {"seconds": 3, "lines": 50}}
    )

    events = []
    for event in portal.follow(job["id"]):
        events.append(event)
        # The line goes down mid-job: during the burst of lines, and at each tick.
        if event["id"] in (3, 20, 40) or event.get("line", "").startswith("tick"):
            proxy.cut()

    ids = [event["id"] for event in events]
    assert ids == list(range(1, len(ids) + 1))
    lines = [event["line"] for event in events if event["type"] == "log"]
    assert [line for line in lines if line.startswith("line ")] == [f"line {n}" for n in range(50)]
    assert [line for line in lines if line.startswith("tick ")] == ["tick 1", "tick 2", "tick 3"]
    assert lines[-1] == "done"
    assert (events[-1]["type"], events[-1]["state"]) == ("state", "succeeded")
    # Cut at least 3 times (in the burst, at ticks 1 and 2; other cuts may find the events
    # after them already received), and connected again each time after the last event it had.
    afters = [int(path.rsplit("after=", 1)[1]) for path in proxy.websockets]
    assert len(afters) >= 4 and afters[0] == 0
    assert afters[1:] == sorted(set(afters[1:])) and set(afters[1:]) <= set(ids)
    stored = portal.get(f"/api/v1/jobs/{job['id']}/events/", after=0)["results"]
    assert events == stored


def test_wait_answers_the_ended_job_and_the_command_exits_1_unless_it_succeeded(
    orm_stack, project, alice_key, tmp_path
):
    orm_stack.add_nodes("n1")
    portal = Portal(orm_stack.url, alice_key)
    failing = portal.submit({"project": project.pk, "kind": "sleep", "params": {"exit": 3}})
    fine = portal.submit({"project": project.pk, "kind": "sleep", "params": {"seconds": 1}})

    assert portal.wait(failing["id"])["state"] == "failed"

    env = {
        **os.environ,
        "PORTAL_URL": orm_stack.url,
        "PORTAL_TOKEN": alice_key,
        "XDG_CONFIG_HOME": str(tmp_path),
    }

    def command(*args):
        return subprocess.run(
            [str(PORTAL_COMMAND), *args], env=env, capture_output=True, text=True, timeout=60
        )

    waited = command("wait", str(failing["id"]))
    assert waited.returncode == 1 and waited.stdout.startswith("failed")
    waited = command("wait", str(fine["id"]))
    assert waited.returncode == 0 and waited.stdout.strip() == "succeeded"
    followed = command("follow", str(fine["id"]))
    assert followed.returncode == 0
    assert "tick 1" in followed.stdout and "[100.0%] sleeping" in followed.stdout
    assert followed.stdout.splitlines()[-1].startswith("== succeeded")

    # Projects by name: listed, and named where a command takes a project.
    listed = command("projects")
    assert listed.returncode == 0
    assert f"{project.pk}\towner\t{project.name}" in listed.stdout.splitlines()
    jobs = command("jobs", "--project", project.name, "--state", "succeeded")
    assert [line.split("\t")[:3] for line in jobs.stdout.splitlines()] == [
        [str(fine["id"]), "sleep", "succeeded"]
    ]
    data = tmp_path / "seqs.fasta"
    data.write_text(">a\nMKV\n")
    assert command("upload", project.name, str(data)).returncode == 0
    unknown = command("jobs", "--project", "no such lab")
    assert unknown.returncode == 1 and "No project is named 'no such lab'" in unknown.stderr
