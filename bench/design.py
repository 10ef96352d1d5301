"""Design: one generation of a binder design campaign on the portal's warm engines, against a
cold `boltz predict` process per candidate.

    .venv/bin/python bench/design.py [--population 16]

With the tiny random Boltz-2 the tests build (tests/boltzkit.py; no weights can be downloaded
here) on the CPU, no recycling and 10 sampling steps, one generation of POPULATION linear
binders of 8-12 residues against a 24-residue target is predicted three ways:

- through the portal, one node: a throwaway portal (web, scheduler, one `runnode` with one CPU
  slot, a fresh PostgreSQL database) runs a one-generation campaign submitted through the API.
  Slot-seconds are the sum over the candidates' child jobs of finished_at - started_at, read
  from the API. The slot's engine is not loaded in advance: the first candidate's job starts
  it, so its one load is inside that job's time and counted once, and nowhere else. The slot's
  busy span (first start to last end, the gaps between jobs included) is shown beside it;
- as Boltz-WebUI runs a candidate: one fresh `boltz predict` process (and model load) per
  candidate, on the same inputs (each child job's `params.input` written as YAML), one after
  another; slot-seconds are the sum of the processes' wall times;
- through the portal, two nodes (two `runnode`s, one CPU slot each, engines loaded afresh):
  the generation's wall time against the one-node run's.

A node shares its host's cores out among its slots (`runnode --threads-per-slot`): the one
node's engine uses every core, as each cold `boltz predict` does; the two nodes, on the same
host, one half each. They still share it with the web server, the scheduler and PostgreSQL.
The scheduler sweeps every second (PORTAL_SCHEDULER_INTERVAL=1), which moves the campaign on;
the default is 5 s.

Goal: the portal at least 4x fewer slot-seconds than the cold processes.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.boltzkit import boltz_predict, make_boltz_cache  # noqa: E402  (after the path)

TARGET = "MKTAYIAKQRQISFVKSHFSRQLE"  # 24 residues
CAMPAIGN = {
    "target": TARGET,
    "binder_type": "linear",
    "length_min": 8,
    "length_max": 12,
    "generations": 1,
    "seed": 7,
    "recycling_steps": 0,
    "sampling_steps": 10,  # as bench/predict.py and boltz_predict
    "msa": "single",
}
POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


class Portal:
    """A throwaway portal: a fresh PostgreSQL database (dropped on `stop`), the web server and
    the scheduler as processes; nodes are added and stopped by name."""

    def __init__(self, cache: dict, work: Path):
        from bench.dispatch import Processes, throwaway_database

        os.environ.setdefault("DATABASE_URL", POSTGRES)
        self.database = throwaway_database()
        if self.database is None:
            raise SystemExit("bench/design.py needs PostgreSQL (DATABASE_URL=postgres://...)")
        self.work = work
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": self.database[0],
            "PORTAL_WORKDIR": str(work / "portal"),
            "REDIS_URL": "",
            "PORTAL_Q_POLL": "0.05",
            "PORTAL_HEARTBEAT_INTERVAL": "2",
            "PORTAL_SCHEDULER_INTERVAL": "1",
            "PORTAL_BOLTZ_CACHE": str(cache["cache"]),
            "PORTAL_BOLTZ_CHECKPOINT": str(cache["checkpoint"]),
            "PORTAL_BOLTZ_AFFINITY_CHECKPOINT": str(cache["affinity_checkpoint"]),
        }
        os.environ.update(env)
        self.processes = Processes({**env, "PYTHONUNBUFFERED": "1"}, work)
        self.nodes: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        import django

        django.setup()
        import requests
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from bench.dispatch import free_port
        from portal.accounts.services import token_create
        from portal.projects.services import project_create

        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench")
        self.project = project_create(name="bench", by=user).pk
        _, key = token_create(user=user, name="bench")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.processes.start("server", "serve", "--port", str(port))
        self.processes.start("scheduler", "runscheduler")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {key}"

    def add_nodes(self, *names: str) -> None:
        """Start `runnode`s of one CPU slot each and wait until each can predict. Nodes that
        share this host share its cores out, as an operator would tell them to."""
        from bench.dispatch import wait_for
        from nodes.models import Node
        from nodes.services import node_create

        threads = str(max(1, (os.cpu_count() or 1) // len(names)))
        for name in names:
            _, token = node_create(name=name, cpu_slots=1)
            self.nodes[name] = self.processes.start(
                name,
                *("runnode", name, "--portal", self.url, "--threads-per-slot", threads),
                PORTAL_NODE_TOKEN=token,
            )
        for name in names:
            wait_for(
                lambda n=name: Node.objects.get(name=n).can_run("boltz"),
                120,
                f"node {name} with its weights",
            )
            wait_for(
                lambda n=name: "running." in (self.work / f"{n}.log").read_text(),
                120,
                f"node {name}'s cluster",
            )

    def stop_nodes(self) -> None:
        """Disable every node (nothing more is placed on it), stop it and its engines."""
        from nodes.models import Node
        from nodes.services import node_disable

        for name, process in self.nodes.items():
            node_disable(node=Node.objects.get(name=name))
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.kill_engines()
        self.nodes = {}

    def kill_engines(self) -> None:
        # Engines run in sessions of their own and outlive the job that started them.
        for pid_file in (self.work / "portal" / "engines").glob("**/*.pid"):
            try:
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            except (ValueError, ProcessLookupError, PermissionError):
                pass

    def stop(self) -> None:
        self.processes.stop()
        self.kill_engines()
        from django.db import connections

        connections.close_all()
        self.database[1]()

    def get(self, path: str):
        response = self.session.get(f"{self.url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def campaign(self, population: int) -> dict:
        """Submit a one-generation campaign, wait for its end; the campaign's job and its
        candidates' child jobs (details), all as the API gives them."""
        from bench.dispatch import wait_for

        params = {**CAMPAIGN, "population": population, "elites": min(4, population - 1)}
        response = self.session.post(
            f"{self.url}/api/v1/jobs/",
            json={"project": self.project, "kind": "design", "params": params},
            timeout=60,
        )
        if response.status_code != 201:
            raise SystemExit(f"the campaign was refused: {response.status_code} {response.text}")
        pk = response.json()["id"]
        wait_for(
            lambda: (
                self.get(f"/api/v1/jobs/{pk}/")["state"] in ("succeeded", "failed", "cancelled")
            ),
            600,
            "the campaign",
        )
        campaign = self.get(f"/api/v1/jobs/{pk}/")
        if campaign["state"] != "succeeded":
            raise SystemExit(
                f"campaign {pk} {campaign['state']}: {campaign['error']!r}; "
                f"logs in {self.work} (kept)"
            )
        candidates, page = [], f"/api/v1/jobs/{pk}/candidates/"
        while page:
            answer = self.get(page)
            candidates += answer["results"]
            page = answer["next"] and answer["next"].removeprefix(self.url)
        children = [self.get(f"/api/v1/jobs/{c['job']}/") for c in candidates]
        failed = [c for c in children if c["state"] != "succeeded"]
        if failed:
            raise SystemExit(
                f"{len(failed)} candidates' predictions failed: {failed[0]['error']!r}"
            )
        return {
            "campaign": campaign,
            "children": children,
            "engine_loads": [load for c in children if (load := self.engine_load(c["id"]))],
        }

    def engine_load(self, job_id: int) -> float | None:
        """The seconds the engine says its load took, if this job started it (its log)."""
        for event in self.get(f"/api/v1/jobs/{job_id}/events/")["results"]:
            found = re.search(r"Boltz-2 ready on \S+ in ([\d.]+) s", event.get("line", ""))
            if found:
                return float(found[1])
        return None


def figures(run: dict) -> dict:
    children = sorted(run["children"], key=lambda c: c["started_at"])
    times = [seconds_between(c["started_at"], c["finished_at"]) for c in children]
    first_queued = min(c["queued_at"] or c["created_at"] for c in children)
    last_finished = max(c["finished_at"] for c in children)
    campaign = run["campaign"]
    return {
        "slot_seconds": sum(times),
        "first_job": times[0],
        "median_job": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "busy_span": seconds_between(children[0]["started_at"], last_finished),
        "wall": seconds_between(first_queued, last_finished),
        "campaign_wall": seconds_between(campaign["started_at"], campaign["finished_at"]),
        "nodes": sorted({c["node"] for c in children}),
        "engine_loads": run["engine_loads"],
    }


def cold(cache: dict, run: dict, work: Path) -> list[float]:
    """A fresh `boltz predict` per candidate on its child job's input, one after another."""
    import yaml

    folder = work / "cold-inputs"
    folder.mkdir()
    times = []
    for i, child in enumerate(run["children"]):
        path = folder / f"candidate{i:02d}.yaml"
        path.write_text(yaml.safe_dump(child["params"]["input"], sort_keys=False))
        began = time.monotonic()
        boltz_predict(cache, path, work / "cold" / path.stem, seed=child["params"]["seed"])
        times.append(time.monotonic() - began)
    return times


def report(n: int, one: dict, two: dict, cold_times: list[float], load: dict) -> None:
    cold_total = sum(cold_times)
    print(
        f"\nOne generation of {n} candidates: linear binders of 8-12 residues against a "
        f"{len(TARGET)}-residue target\n(tiny random Boltz-2, CPU, 0 recycling steps, "
        f"{CAMPAIGN['sampling_steps']} sampling steps)\n"
    )
    print(f"{'slot-seconds':<62}{'s':>8}{'s / candidate':>15}")
    rows = [
        ("portal, one node (one CPU slot): sum of the jobs' times", one["slot_seconds"]),
        ("  the slot's busy span (first start -> last end, gaps too)", one["busy_span"]),
        (f"{n} cold `boltz predict`, one after another", cold_total),
    ]
    for name, total in rows:
        print(f"{name:<62}{total:>8.1f}{total / n:>15.2f}")
    loads = " + ".join(f"{s:.1f}" for s in one["engine_loads"]) or "?"
    print(
        f"  (the engine's one load, {loads} s by its log, is inside the first job's "
        f"{one['first_job']:.1f} s;\n   the median of the other jobs {one['median_job']:.2f} s, "
        f"of a cold process {statistics.median(cold_times):.2f} s)"
    )
    ratio, by_span = cold_total / one["slot_seconds"], cold_total / one["busy_span"]
    print(
        f"\ncold / portal: {ratio:.1f}x fewer slot-seconds through the portal "
        f"(by the busy span {by_span:.1f}x); goal >= 4x: {'met' if ratio >= 4 else 'missed'}"
    )
    header = f"{'one node':>10}{'two nodes':>11}{'two / one':>11}"
    print(f"\n{'wall time of the generation':<46}{header}")
    for name, key in [
        ("first child queued -> last child ended", "wall"),
        ("campaign started -> ended", "campaign_wall"),
    ]:
        print(f"{name:<46}{one[key]:>9.1f}s{two[key]:>10.1f}s{two[key] / one[key]:>10.2f}x")
    print(
        f"{'slot-seconds (sum of the jobs times)':<46}{one['slot_seconds']:>9.1f}s"
        f"{two['slot_seconds']:>10.1f}s{two['slot_seconds'] / one['slot_seconds']:>10.2f}x"
    )
    loads = " and ".join(f"{s:.1f} s" for s in two["engine_loads"]) or "?"
    print(
        f"\nNote: this machine has {os.cpu_count()} cores. The two CPU nodes "
        f"({', '.join(two['nodes'])}) load their engines ({loads}) and predict\nat the same "
        "time, each on its share of the cores (`--threads-per-slot`), beside the web server, "
        "the\nscheduler and PostgreSQL; the one node's engine used them all."
    )
    print(
        "The machine's 1-minute load average after each part (other work running at the same "
        "time\nslows the part it overlaps): "
        + ", ".join(f"{part} {value:.1f}" for part, value in load.items())
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=16)
    args = parser.parse_args()
    # A SIGTERM cleans up as Ctrl-C does: through the `finally`s below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="portal-design-"))
    keep = False
    portal = None
    try:
        cache = make_boltz_cache(work / "boltz-cache")
        warm_up = work / "warm-up.yaml"
        warm_up.write_text(
            f"version: 1\nsequences:\n  - protein: {{id: A, sequence: {TARGET}, msa: empty}}\n"
        )
        boltz_predict(cache, warm_up, work / "warm-up")  # the page cache, for every side alike
        portal = Portal(cache, work)
        portal.start()
        print("one node ...", flush=True)
        portal.add_nodes("solo")
        one_node = portal.campaign(args.population)
        load = {"one node": os.getloadavg()[0]}
        portal.stop_nodes()
        print("two nodes ...", flush=True)
        portal.add_nodes("duo-1", "duo-2")
        two_nodes = portal.campaign(args.population)
        load["two nodes"] = os.getloadavg()[0]
        portal.stop_nodes()
        print(f"{args.population} cold `boltz predict` ...", flush=True)
        cold_times = cold(cache, one_node, work)
        load["cold processes"] = os.getloadavg()[0]
        report(args.population, figures(one_node), figures(two_nodes), cold_times, load)
    except SystemExit:
        keep = True
        raise
    finally:
        if portal is not None:
            portal.stop()
        if keep:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
