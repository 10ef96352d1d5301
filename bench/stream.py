"""Streaming: latency from a runner storing an event to a WebSocket client receiving it, with
1 and with 200 clients on one Daphne process, and events lost or doubled.

    .venv/bin/python bench/stream.py [--clients 200] [--events 200] [--rate 10] [--no-redis]

Starts a throwaway portal web server (`manage.py serve`) with the Redis channel layer (or, with
--no-redis, the embedded set-up where pages poll the database), and a job in state running.
The bench process then stores EVENTS log lines through the same service a runner uses, each
carrying the time it was written; client processes follow the job over `/ws/jobs/<id>/` and
note when each line arrives. Goal: p95 under 250 ms at 200 clients, nothing lost or doubled.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dispatch import Processes, percentile, throwaway_database, wait_for  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clients_process(url, key, count, expected, ready, results):
    """COUNT WebSocket clients in one process; each reports its latencies, lost and doubled."""
    import websockets

    async def one():
        seen, latencies = set(), []
        doubled = 0
        async with websockets.connect(
            url, additional_headers={"Authorization": f"Token {key}"}, max_queue=None
        ) as ws:
            ready.put(1)
            while len(seen) < expected:
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
                except TimeoutError:
                    break
                if event["type"] != "log" or not event["line"].startswith("emitted "):
                    continue
                arrived = time.time()
                number, emitted = event["line"].split()[1:3]
                if number in seen:
                    doubled += 1
                seen.add(number)
                latencies.append(arrived - float(emitted))
        return latencies, expected - len(seen), doubled

    async def main():
        return await asyncio.gather(*(one() for _ in range(count)))

    results.put(asyncio.run(main()))


def run(args, url, key, job_id, clients):
    from jobs.lifecycle import events_append

    ready, results = multiprocessing.Queue(), multiprocessing.Queue()
    per_process = max(1, min(clients, 50))
    procs = []
    left = clients
    while left > 0:
        n = min(per_process, left)
        left -= n
        procs.append(
            multiprocessing.Process(
                target=clients_process, args=(url, key, n, args.events, ready, results)
            )
        )
    for p in procs:
        p.start()
    for _ in range(clients):
        ready.get(timeout=120)
    time.sleep(0.5)
    for number in range(args.events):
        line = f"emitted {number} {time.time():.6f}"
        events_append(
            job_id=job_id, placement=1, events=[{"type": "log", "line": line}], durable=False
        )
        time.sleep(1 / args.rate)
    latencies, lost, doubled = [], 0, 0
    for _ in procs:
        for client_latencies, client_lost, client_doubled in results.get(timeout=120):
            latencies += client_latencies
            lost += client_lost
            doubled += client_doubled
    for p in procs:
        p.join()
    return latencies, lost, doubled


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10, help="events per second")
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    database = throwaway_database()
    redis_url = "" if args.no_redis else "redis://127.0.0.1:6379/8"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_WORKDIR": str(work),
        "REDIS_URL": redis_url,
        "PORTAL_LOG_LEVEL": "WARNING",
        **({"DATABASE_URL": database[0]} if database else {}),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from jobs.lifecycle import transition
    from jobs.models import Job, State
    from jobs.services import job_submit
    from portal.accounts.services import token_create
    from portal.projects.services import project_create

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench")
    project = project_create(name="bench", by=user)
    _, key = token_create(user=user, name="bench")
    job, _ = job_submit(project=project, by=user, kind="check", params={}, inputs=[])
    Job.objects.filter(pk=job.pk).update(placement=1)
    transition(job, State.RUNNING, reason="streaming benchmark", placement=1)

    processes = Processes(env, work)
    port = free_port()
    processes.start("server", "serve", "--port", str(port))
    wait_for(lambda: _open(port), what="the server")
    url = f"ws://127.0.0.1:{port}/ws/jobs/{job.pk}/?after={Job.objects.get(pk=job.pk).event_seq}"
    try:
        rows = []
        for clients in (1, args.clients):
            latencies, lost, doubled = run(args, url, key, job.pk, clients)
            rows.append((clients, latencies, lost, doubled))
            url = url.rsplit("=", 1)[0] + f"={Job.objects.get(pk=job.pk).event_seq}"
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)
        if database:
            from django.db import connections

            connections.close_all()
            database[1]()

    layer = "no channel layer: pages poll the database" if args.no_redis else "Redis channel layer"
    print(f"\n{args.events} events at {args.rate:.0f}/s through one Daphne process, {layer}")
    print(f"{'clients':>8}{'p50':>10}{'p95':>10}{'max':>10}{'lost':>8}{'doubled':>9}")
    for clients, latencies, lost, doubled in rows:
        print(
            f"{clients:>8}{statistics.median(latencies) * 1000:>8.0f}ms"
            f"{percentile(latencies, 95) * 1000:>8.0f}ms{max(latencies) * 1000:>8.0f}ms"
            f"{lost:>8}{doubled:>9}"
        )
    p95 = percentile(rows[-1][1], 95)
    ok = p95 < 0.25 and not rows[-1][2] and not rows[-1][3]
    print(
        f"\ngoal at {args.clients} clients: p95 < 250 ms, none lost, none doubled -> "
        f"{p95 * 1000:.0f} ms, {rows[-1][2]} lost, {rows[-1][3]} doubled "
        f"({'met' if ok else 'missed'})"
    )


def _open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
