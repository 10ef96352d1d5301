"""Dispatch: time from submitting a job to its process starting, how long a busy slot stays
empty between two queued jobs, and the CPU the portal spends per job, beside bare Django-Q2
`async_task` round trips on the same broker.

    .venv/bin/python bench/dispatch.py [--broker orm|redis] [--jobs 200] [--slots 4]

Starts a throwaway portal (web, scheduler, one node with SLOTS CPU slots) on SQLite, or on
DATABASE_URL if set (use PostgreSQL for numbers that mean something), and a bare Django-Q2
cluster with as many workers. Each side runs JOBS trivial jobs twice: one at a time per slot
(submit → start without queueing) and all at once (a backlog: the gap between one job's end and
the next one's process on the same slot, or worker; jobs per second; CPU per job by process).
Goal: p95 submit → start under 1 s.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Processes:
    def __init__(self, env, logs: Path):
        self.env, self.logs, self.running = env, logs, []

    def start(self, name, *args, **extra):
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env={**self.env, **{k: str(v) for k, v in extra.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def stop(self):
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


def cpu_seconds(roots) -> float:
    """CPU time used so far by these processes, their live descendants and the children they
    have reaped (a job's process, once it ended)."""
    import psutil

    total = 0.0
    for root in roots:
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


class CpuMeter:
    """CPU seconds spent by each named group of processes between `start` and `stop`;
    "self" is this process alone (the client: submitting and watching)."""

    def __init__(self, groups: dict):
        import psutil

        self.groups = {
            name: procs if procs == "self" else [psutil.Process(p) for p in procs]
            for name, procs in groups.items()
        }
        self.groups["PostgreSQL"] = [
            p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postgresql")
        ]
        self.groups["Redis"] = [
            p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("redis")
        ]

    def read(self):
        return {
            name: time.process_time() if procs == "self" else cpu_seconds(procs)
            for name, procs in self.groups.items()
        }

    def start(self):
        self.before = self.read()

    def stop(self):
        return {name: seconds - self.before[name] for name, seconds in self.read().items()}


def gaps(runs) -> list[float]:
    """How long each slot (or worker) stood empty between two runs: from one's end to the next
    one's process start. `runs` are (slot, started, ended)."""
    runs = sorted(runs)
    return [
        after[1] - before[2]
        for before, after in zip(runs, runs[1:], strict=False)
        if before[0] == after[0]
    ]


def wait_for(condition, timeout=60, what="it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["orm", "redis"], default="orm")
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--portal-only", action="store_true", help="skip the bare comparison")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    database = throwaway_database()
    redis_url = "redis://127.0.0.1:6379/7" if args.broker == "redis" else ""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_WORKDIR": str(work),
        "PORTAL_JOB_KIND_MODULES": "bench.kinds",
        "REDIS_URL": redis_url,
        "PORTAL_Q_POLL": "0.05",
        "PORTAL_HEARTBEAT_INTERVAL": "5",
        "PYTHONUNBUFFERED": "1",
        **({"DATABASE_URL": database[0]} if database else {}),
    }
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    import django

    django.setup()
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    processes = Processes(env, work)
    try:
        results = {"portal": run_portal(args, processes)}
        if not args.portal_only:
            results["bare Django-Q2"] = run_bare(args, processes, work)
        report(args, results)
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)
        if database:
            from django.db import connections

            connections.close_all()
            database[1]()


def throwaway_database():
    """With DATABASE_URL pointing at PostgreSQL: a fresh database beside it, dropped after."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import psycopg

    base, _, _ = url.rpartition("/")
    name = f"portal_bench_{os.getpid()}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


def run_portal(args, processes):
    import requests
    from django.contrib.auth import get_user_model

    from jobs.models import Job
    from nodes.models import Node
    from nodes.services import node_create
    from portal.accounts.services import token_create
    from portal.projects.services import project_create

    user = get_user_model().objects.create_user("bench")
    project = project_create(name="bench", by=user)
    _, key = token_create(user=user, name="bench")
    _, node_token = node_create(name="bench", cpu_slots=args.slots)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = processes.start("server", "serve", "--port", str(port))
    scheduler = processes.start("scheduler", "runscheduler")
    node = processes.start(
        "node", "runnode", "bench", "--portal", url, PORTAL_NODE_TOKEN=node_token
    )
    wait_for(lambda: Node.objects.filter(last_heartbeat_at__isnull=False).exists(), what="the node")
    wait_for(lambda: "running." in (processes.logs / "node.log").read_text(), what="its cluster")
    assert node.poll() is None
    session = requests.Session()
    session.headers["Authorization"] = f"Token {key}"

    def submit(n):
        submitted = time.time()
        response = session.post(
            f"{url}/api/v1/jobs/", json={"project": project.pk, "kind": "noop", "params": {"n": n}}
        )
        response.raise_for_status()
        return response.json()["id"], submitted

    def started(pk):
        event = Job.objects.get(pk=pk).events.filter(type="log").first()
        return float(event.data["line"].split()[1])

    def finished(pk):
        state = Job.objects.filter(pk=pk).values_list("state", flat=True).get()
        if state in ("failed", "cancelled"):
            raise SystemExit(f"job {pk} {state}: {Job.objects.get(pk=pk).error or '?'}")
        return state == "succeeded"

    def all_finished(ids):
        states = Counter(Job.objects.filter(pk__in=ids).values_list("state", flat=True))
        if states["failed"] or states["cancelled"]:
            raise SystemExit(f"{states['failed']} failed, {states['cancelled']} cancelled")
        return states["succeeded"] == len(ids)

    # Latency: at most one job per slot in flight, so nothing waits for a slot.
    submit(-1)  # warm-up
    latencies = []
    in_flight = []
    for n in range(args.jobs):
        while len(in_flight) >= args.slots:
            in_flight = [job for job in in_flight if not finished(job[0])]
            time.sleep(0.01)
        in_flight.append(submit(n))
        latencies.append(in_flight[-1])
    wait_for(lambda: all(finished(pk) for pk, _ in latencies), 300, "the latency jobs")
    latency = [started(pk) - submitted for pk, submitted in latencies]
    stages = {
        "submit → placed": [],
        "placed → runner claimed it": [],
        "claimed → process up": [],
        "process up → finished": [],
    }
    for pk, submitted in latencies:
        j = Job.objects.get(pk=pk)
        up = started(pk)
        stages["submit → placed"].append(j.placed_at.timestamp() - submitted)
        stages["placed → runner claimed it"].append(
            j.started_at.timestamp() - j.placed_at.timestamp()
        )
        stages["claimed → process up"].append(up - j.started_at.timestamp())
        stages["process up → finished"].append(j.finished_at.timestamp() - up)

    # Throughput: all at once, from as many clients as slots.
    meter = CpuMeter(
        {
            "web server": [server.pid],
            "scheduler": [scheduler.pid],
            "node (runners, jobs)": [node.pid],
            "bench client": "self",
        }
    )
    meter.start()
    begin = time.time()
    with ThreadPoolExecutor(args.slots) as pool:
        burst = list(pool.map(submit, range(args.jobs, 2 * args.jobs)))
    ids = [pk for pk, _ in burst]
    wait_for(lambda: all_finished(ids), 600, "the burst")
    last = max(Job.objects.filter(pk__in=ids).values_list("finished_at", flat=True)).timestamp()
    cpu = meter.stop()
    runs = [
        (j.slot, started(j.pk), j.finished_at.timestamp()) for j in Job.objects.filter(pk__in=ids)
    ]
    return {
        "latency": latency,
        "throughput": args.jobs / (last - begin),
        "gaps": gaps(runs),
        "stages": stages,
        "cpu": cpu,
    }


def run_bare(args, processes, work):
    from django_q.tasks import async_task

    log = work / "bare-tasks.log"
    log.touch()
    bare = processes.start(
        "bare", "qcluster", Q_CLUSTER_NAME="bare", PORTAL_Q_WORKERS=args.slots + 1
    )
    wait_for(
        lambda: "running." in (processes.logs / "bare.log").read_text(), what="the bare cluster"
    )

    def done():
        return len(log.read_text().splitlines())

    def enqueue(_=None):
        async_task("bench.kinds.bare_task", str(log), time.time(), cluster="bare", save=False)

    enqueue()  # warm-up
    wait_for(lambda: done() == 1, what="the warm-up task")
    for n in range(args.jobs):
        while n + 1 - done() >= args.slots:
            time.sleep(0.005)
        enqueue()
    wait_for(lambda: done() == args.jobs + 1, 300, "the latency tasks")
    lines = [line.split() for line in log.read_text().splitlines()[1:]]
    latency = [float(started) - float(submitted) for submitted, started, _, _ in lines]

    meter = CpuMeter({"cluster (tasks, jobs)": [bare.pid], "bench client": "self"})
    meter.start()
    begin = time.time()
    with ThreadPoolExecutor(args.slots) as pool:
        list(pool.map(enqueue, range(args.jobs)))
    wait_for(lambda: done() == 2 * args.jobs + 1, 600, "the burst")
    cpu = meter.stop()
    burst = [line.split() for line in log.read_text().splitlines()[args.jobs + 1 :]]
    last = max(float(ended) for _, _, ended, _ in burst)
    runs = [(pid, float(started), float(ended)) for _, started, ended, pid in burst]
    return {
        "latency": latency,
        "throughput": args.jobs / (last - begin),
        "gaps": gaps(runs),
        "cpu": cpu,
    }


def report(args, results):
    from django.db import connection

    print()
    print(
        f"{args.jobs} trivial jobs, {args.slots} slots, broker {args.broker}, "
        f"database {connection.vendor}"
    )
    print(
        f"{'':<16}{'submit→start p50':>18}{'p95':>8}{'slot gap p50':>15}{'p95':>8}"
        f"{'jobs/s':>9}{'CPU/job':>10}"
    )
    for name, r in results.items():
        cpu = sum(r["cpu"].values()) / args.jobs * 1000
        print(
            f"{name:<16}{statistics.median(r['latency']) * 1000:>15.0f} ms"
            f"{percentile(r['latency'], 95) * 1000:>5.0f} ms"
            f"{statistics.median(r['gaps']) * 1000:>12.0f} ms"
            f"{percentile(r['gaps'], 95) * 1000:>5.0f} ms"
            f"{r['throughput']:>9.1f}{cpu:>7.1f} ms"
        )
    portal = results["portal"]
    print("\nwhere a portal job's time goes (median):")
    for stage, values in portal["stages"].items():
        print(f"  {stage:<30}{statistics.median(values) * 1000:>8.0f} ms")
    print("\nCPU per job in the burst, by process (ms):")
    for name, r in results.items():
        parts = ", ".join(
            f"{group} {seconds / args.jobs * 1000:.1f}" for group, seconds in r["cpu"].items()
        )
        total = sum(r["cpu"].values()) / args.jobs * 1000
        print(f"  {name:<16}{total:>6.1f}  ({parts})")
    p95 = percentile(portal["latency"], 95)
    print(f"\ngoal: p95 submit→start < 1 s -> {p95:.2f} s ({'met' if p95 < 1 else 'missed'})")


if __name__ == "__main__":
    main()
