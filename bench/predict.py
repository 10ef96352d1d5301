"""Predictions: the portal's resident engine against the ways people run `boltz predict`.

    .venv/bin/python bench/predict.py [--n 20]

With the tiny random Boltz-2 the tests build (tests/boltzkit.py; no weights can be downloaded
here) on the CPU, it predicts N small proteins three ways and prints seconds per prediction:

- through the portal: a throwaway portal (web, scheduler, one node with one CPU slot), the N
  jobs submitted through the API at once, from the first submission to the last job's end
  (the engine's one load included);
- N cold `boltz predict` processes, one per input (the usual one-process-per-job set-up);
- one `boltz predict` over a directory of the same N inputs (the best a command-line user can
  do: one process, one load).

Goals: the portal at least 6x faster than cold processes, and within 1.25x of the directory.

Where the time goes: the first job's steps (it starts the engine), a warm job's median in the
portal, and the same inputs through a resident engine alone, spoken to over its socket as a
runner does: the difference is the portal's own part of a warm job.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.boltzkit import boltz_predict, make_boltz_cache  # noqa: E402  (after the path)

OPTIONS = {"recycling_steps": 0, "sampling_steps": 10}
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"


def inputs(n: int, folder: Path) -> list[Path]:
    """N small proteins, each its own YAML."""
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        sequence = "".join(RESIDUES[(i * 7 + j * 3) % 20] for j in range(24))
        path = folder / f"p{i:02d}.yaml"
        path.write_text(
            f"version: 1\nsequences:\n  - protein: {{id: A, sequence: {sequence}, msa: empty}}\n"
        )
        paths.append(path)
    return paths


def cold(cache, paths, work) -> float:
    began = time.monotonic()
    for path in paths:
        boltz_predict(cache, path, work / "cold" / path.stem)
    return time.monotonic() - began


def directory(cache, folder, work) -> float:
    began = time.monotonic()
    boltz_predict(cache, folder, work / "directory")
    return time.monotonic() - began


def portal(cache, paths, work) -> float:
    from bench.dispatch import Processes, free_port, throwaway_database, wait_for

    database = throwaway_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_WORKDIR": str(work / "portal"),
        "REDIS_URL": "",
        "PORTAL_Q_POLL": "0.05",
        "PORTAL_HEARTBEAT_INTERVAL": "2",
        "PORTAL_BOLTZ_CACHE": str(cache["cache"]),
        "PORTAL_BOLTZ_CHECKPOINT": str(cache["checkpoint"]),
        "PYTHONUNBUFFERED": "1",
        **({"DATABASE_URL": database[0]} if database else {}),
    }
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    import django

    django.setup()
    import requests
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from jobs.models import Job
    from nodes.models import Node
    from nodes.services import node_create
    from portal.accounts.services import token_create
    from portal.projects.services import project_create

    call_command("migrate", verbosity=0)
    processes = Processes(env, work)
    try:
        user = get_user_model().objects.create_user("bench")
        project = project_create(name="bench", by=user)
        _, key = token_create(user=user, name="bench")
        _, node_token = node_create(name="bench", cpu_slots=1)
        url = f"http://127.0.0.1:{free_port()}"
        processes.start("server", "serve", "--port", url.rsplit(":", 1)[1])
        processes.start("scheduler", "runscheduler")
        processes.start("node", "runnode", "bench", "--portal", url, PORTAL_NODE_TOKEN=node_token)
        wait_for(
            lambda: any(n.can_run("boltz") for n in Node.objects.all()),
            what="the node with its weights",
        )
        wait_for(lambda: "running." in (work / "node.log").read_text(), what="its cluster")
        session = requests.Session()
        session.headers["Authorization"] = f"Token {key}"
        uploads = []
        for path in paths:
            with open(path, "rb") as f:
                response = session.post(
                    f"{url}/api/v1/uploads/", data={"project": project.pk}, files={"file": f}
                )
            response.raise_for_status()
            uploads.append(response.json()["id"])
        began = time.monotonic()
        ids = []
        for upload in uploads:
            response = session.post(
                f"{url}/api/v1/jobs/",
                json={
                    "project": project.pk,
                    "kind": "predict",
                    "inputs": [upload],
                    "params": {**OPTIONS, "seed": 0},
                },
            )
            response.raise_for_status()
            ids.append(response.json()["id"])

        def done():
            states = list(Job.objects.filter(pk__in=ids).values_list("state", flat=True))
            failed = [s for s in states if s in ("failed", "cancelled")]
            if failed:
                raise SystemExit(f"{len(failed)} predictions failed: see {work}/node.log")
            return states.count("succeeded") == len(ids)

        wait_for(done, 600, "the predictions")
        elapsed = time.monotonic() - began
        jobs = list(Job.objects.filter(pk__in=ids).order_by("pk"))
        first_job(jobs[0], began)
        return elapsed, phases(jobs[1:])  # the first loads the engine
    finally:
        processes.stop()
        from django.db import connections

        connections.close_all()
        if database:
            database[1]()


# The first job's way: it starts the slot's engine, which loads boltz and the model, and prints
# each step as it goes (the node sends those lines as they come).
FIRST = [
    ("the engine's start", "starting the predict engine"),
    ("boltz imported", "loading the Boltz-2 structure model"),
    ("model loaded", "Boltz-2 ready on"),
    ("its job begun", "Boltz-2 engine pid="),
]


def first_job(job, began: float) -> None:
    """When each step of the first job was reached, in seconds from the first submission."""
    import time as clock

    start = began + clock.time() - clock.monotonic()  # `began` on the wall clock
    at = [("placed", job.placed_at), ("started", job.started_at)]
    for label, text in FIRST:
        event = job.events.filter(data__line__startswith=text).order_by("seq").first()
        if event is not None:
            at.append((label, event.created_at))
    at.append(("finished", job.finished_at))
    print("\nthe first job (it starts the engine), seconds from the first submission:")
    for label, when in at:
        print(f"  {label:<20} {when.timestamp() - start:7.2f}")


def phases(jobs) -> float:
    """The median warm job's time in the portal, placed to finished and its parts, and the gap
    between two jobs on the slot; returns the median placed to finished."""
    import statistics

    def median(values) -> float:
        return statistics.median(list(values))

    queued = median((j.started_at - j.placed_at).total_seconds() for j in jobs)
    ran = median((j.finished_at - j.started_at).total_seconds() for j in jobs)
    whole = median((j.finished_at - j.placed_at).total_seconds() for j in jobs)
    ordered = sorted(jobs, key=lambda job: job.started_at)
    gaps = [
        (after.placed_at - before.finished_at).total_seconds()
        for before, after in zip(ordered, ordered[1:], strict=False)
    ]
    print(f"\na warm job in the portal (median of {len(jobs)}, seconds):")
    print(f"  placed -> started (the runner's task, the run claimed)   {queued:.3f}")
    print(f"  started -> finished (inputs, the engine, artifacts, end) {ran:.3f}")
    print(f"  placed -> finished                                       {whole:.3f}")
    if gaps:
        print(f"  one finished -> the next placed on its slot            {median(gaps):.3f}")
    return whole


def engine_alone(cache, paths, work) -> list[float]:
    """The same inputs through a resident engine alone, spoken to over its socket as a runner
    does (bench/gpu.py: Engine), without the portal: each job's seconds, in order."""
    import yaml

    from bench.gpu import Engine

    folder = work / "engine-alone"
    folder.mkdir()
    options = {k: str(cache[k]) for k in ("cache", "checkpoint", "affinity_checkpoint")}
    engine = Engine(folder, options, None)
    try:
        seconds = []
        for path in paths:
            document = yaml.safe_load(path.read_text())
            done = engine.predict(path.stem, document, {**OPTIONS, "seed": 0})
            if done["status"] != "ok":
                raise SystemExit(f"the engine alone failed: {done}")
            seconds.append(done["seconds"])
        return seconds
    finally:
        engine.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portal-predict-"))
    try:
        cache = make_boltz_cache(work / "boltz-cache")
        folder = work / "inputs"
        paths = inputs(args.n, folder)
        boltz_predict(cache, paths[0], work / "warm-up")  # the page cache, for every side alike
        ours, warm_job = portal(cache, paths, work)
        alone = engine_alone(cache, paths, work)
        seconds = {
            "portal (one node, one slot)": ours,
            f"{args.n} cold `boltz predict`": cold(cache, paths, work),
            "one `boltz predict` over a directory": directory(cache, folder, work),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.n} small predictions (tiny random Boltz-2, CPU, 10 sampling steps)")
    print(f"{'':<40}{'s total':>9}{'s / prediction':>16}")
    for name, total in seconds.items():
        print(f"{name:<40}{total:>9.1f}{total / args.n:>16.2f}")
    import statistics

    engine_job = statistics.median(alone[1:])
    print(
        f"\na warm job: {warm_job:.3f} s in the portal (placed to finished), {engine_job:.3f} s "
        f"in the engine alone (median of {len(alone) - 1}): the portal's own part "
        f"{warm_job - engine_job:.3f} s (the runner, inputs, artifacts, events, the end)"
    )
    ours, cold_, dir_ = seconds.values()
    print(
        f"\nportal vs cold processes: {cold_ / ours:.1f}x faster (goal >= 6x: "
        f"{'met' if cold_ / ours >= 6 else 'missed'}); portal vs the directory run: "
        f"{ours / dir_:.2f}x its time (goal <= 1.25x: {'met' if ours / dir_ <= 1.25 else 'missed'})"
    )


if __name__ == "__main__":
    main()
