"""The operators' commands: submit (and --wait), requeue, cleanscratch, checknode."""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from jobs.models import Job, State
from jobs.runner import ENDED, run_job
from tests.conftest import REPO, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database]


def command(*args) -> tuple[str, str, int]:
    out, err = StringIO(), StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return out.getvalue(), err.getvalue(), code


def run_when_placed(enqueued):
    """The node's runner, in a thread: runs the first job placed."""

    def target():
        try:
            deadline = time.monotonic() + 20
            while not enqueued and time.monotonic() < deadline:
                time.sleep(0.05)
            job_id, placement, _ = enqueued[0]
            run_job(job_id, placement)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.mark.parametrize("outcome", ["succeeds", "fails"])
def test_submit_prints_the_id_and_wait_follows_the_job_to_its_end(
    outcome, make_node, enqueued, project, alice, tmp_path
):
    make_node(runner=True)
    spec = tmp_path / "job.yaml"
    params = "{seconds: 0.3}" if outcome == "succeeds" else "{exit: 3}"
    spec.write_text(f"project: {project.pk}\nkind: sleep\nname: from a file\nparams: {params}\n")
    runner = run_when_placed(enqueued)
    out, err, code = command("submit", str(spec), "--user", "alice", "--wait", "--poll", "0.05")
    runner.join()
    job = Job.objects.get(pk=int(out.strip()))
    assert job.name == "from a file" and job.owner == alice
    if outcome == "succeeds":
        assert (code, job.state) == (0, State.SUCCEEDED)
        assert f"job {job.pk} succeeded: finished" in err
    else:
        assert (code, job.state) == (1, State.FAILED)
        assert f"job {job.pk} failed: exited with code 3" in err


def test_submit_refuses_a_bad_file_or_user_with_the_reason(project, alice, bob, tmp_path):
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"project": project.pk, "kind": "sleep", "params": {"seconds": -1}}))
    with pytest.raises(CommandError, match="params.seconds"):
        call_command("submit", str(spec), "--user", "alice")
    with pytest.raises(CommandError, match="Viewers cannot change this project"):
        call_command("submit", str(spec), "--user", "bob")
    with pytest.raises(CommandError, match="No active user nobody"):
        call_command("submit", str(spec), "--user", "nobody")
    spec.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON or YAML"):
        call_command("submit", str(spec), "--user", "alice")
    assert not Job.objects.exists()


def test_requeue_puts_back_the_jobs_of_offline_nodes_or_those_named(make_node, submit, enqueued):
    live, dead = make_node("live"), make_node("dead")
    stale, fine, named = (submit(params={"n": n}) for n in range(3))
    now = timezone.now()
    Job.objects.filter(pk=stale.pk).update(state=State.RUNNING, node=dead, slot=0, started_at=now)
    Job.objects.filter(pk=fine.pk).update(state=State.RUNNING, node=live, slot=0, started_at=now)
    Job.objects.filter(pk=named.pk).update(state=State.QUEUED, node=live, slot=1, placed_at=now)
    dead.last_heartbeat_at = now - timedelta(hours=1)
    dead.save()

    out, _, _ = command("requeue")
    assert f"job {stale.pk} (sleep): queued" in out and "1 job(s) re-queued." in out
    stale.refresh_from_db()
    assert stale.state == State.QUEUED and stale.node_id != dead.pk
    assert Job.objects.get(pk=fine.pk).state == State.RUNNING

    out, _, _ = command("requeue", str(named.pk))
    named.refresh_from_db()
    assert named.node_id is None and "1 job(s) re-queued." in out
    with pytest.raises(CommandError, match="No job 999999"):
        call_command("requeue", "999999")


def test_cleanscratch_removes_ended_runs_beyond_those_kept_and_says_what_it_freed(settings):
    scratch = settings.WORKDIR / "scratch" / "node-a"
    for n in range(5):
        run = scratch / f"job-{n}-1"
        run.mkdir(parents=True)
        (run / "out.bin").write_bytes(b"x" * 1000)
        (run / ENDED).touch()
        os.utime(run / ENDED, (time.time() - 100 + n, time.time() - 100 + n))
    going = scratch / "job-9-1"
    going.mkdir()
    (going / "partial").write_bytes(b"y" * 50)

    out, _, _ = command("cleanscratch", "--keep", "2")
    assert "Removed 3 scratch directories of ended runs, 2.9\xa0KB freed (3000 bytes)." in out
    assert sorted(p.name for p in scratch.iterdir()) == ["job-3-1", "job-4-1", "job-9-1"]


def test_checknode_reports_this_host_without_the_portal(tmp_path):
    """As an operator runs it on a GPU host: a process of its own; this machine has torch and
    boltz but no GPU and no weights in an empty cache."""
    env = process_env(PORTAL_BOLTZ_CACHE=str(tmp_path / "empty"), PORTAL_MSA_SERVER_URL="")
    done = subprocess.run(
        [sys.executable, "manage.py", "checknode"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "NVIDIA driver: none" in done.stdout and "torch 2.13" in done.stdout
    assert "boltz 2.2.1; weights in" in done.stdout and "missing" in done.stdout
    assert "GPU kernels (cuequivariance): not installed" in done.stdout
    assert "MSA server: none configured" in done.stdout
    strict = subprocess.run(
        [sys.executable, "manage.py", "checknode", "--predict", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict.returncode == 1 and "cannot predict" in strict.stderr
    assert json.loads(strict.stdout)["gpus"] == []
