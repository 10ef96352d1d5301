"""The embedded default: `manage.py runall` (what `make run` starts) runs jobs with no set-up."""

import pytest

from jobs.models import Job, State
from nodes.models import Node
from tests.conftest import FAST, ManagedProcess, PortalClient, _port_open, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.database]


def test_runall_serves_the_portal_and_runs_a_check_job_on_this_machine(
    transactional_db, project, alice, tmp_path
):
    port = free_port()
    env = {**FAST, "REDIS_URL": "", "PORTAL_BOLTZ_CACHE": str(tmp_path / "no-weights")}
    portal = ManagedProcess("runall", ["runall", "--port", str(port)], **env)
    try:
        portal.wait_for(lambda: _port_open(port), "the portal to listen")
        wait_until(
            lambda: Node.objects.filter(name="local", last_heartbeat_at__isnull=False).exists(),
            60,
            what="the local node",
        )
        client = PortalClient(f"http://127.0.0.1:{port}", alice)
        pk = client.submit(project, kind="check")["id"]
        wait_until(
            lambda: Job.objects.get(pk=pk).state in (State.SUCCEEDED, State.FAILED),
            90,
            what="the check job",
        )
        job = Job.objects.get(pk=pk)
        assert job.state == State.SUCCEEDED, job.error
        assert job.node.name == "local"
        lines = [e.data["line"] for e in job.events.filter(type="log")]
        assert "NVIDIA driver: none" in lines and any(
            line.startswith("torch 2.13.0") for line in lines
        )
        assert client.get(f"/api/v1/jobs/{pk}/artifacts/check.json").json()["gpus"] == []
        # This machine has no Boltz-2 weights (its PORTAL_BOLTZ_CACHE is empty): said at start.
        assert (
            "This machine's boltz is not ready: no Boltz-2 weights: run `manage.py boltzweights`."
            in portal.output()
        )
    finally:
        portal.stop()
