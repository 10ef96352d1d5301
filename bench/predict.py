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

Goals: the portal at least 4x faster than cold processes, and within 1.25x of the directory.
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
        phases(jobs[1:])  # the first loads the engine
        return elapsed
    finally:
        processes.stop()
        from django.db import connections

        connections.close_all()
        if database:
            database[1]()


# A warm job's way, each step marked by what the portal records: the job's own times, and when
# the lines its engine printed reached the portal (`predictions/engine.py`'s progress lines).
MARKS = [
    ("placed", None),
    ("started", None),
    ("engine", "Boltz-2 engine pid="),
    ("predicting", "predicting the structure"),
    ("writing", "writing the results"),
    ("done", "done"),
    ("finished", None),
]


STEPS = list(zip(MARKS, MARKS[1:], strict=False))

# The first job's way: it starts the slot's engine, which loads boltz and the model.
FIRST = [
    ("the engine's start", "starting the predict engine"),
    ("boltz imported", "loading the Boltz-2 structure model"),
    ("model loaded", "Boltz-2 ready on"),
    ("its job begun", "Boltz-2 engine pid="),
]


def first_job(job, began: float) -> None:
    """When each step of the first job was reached, in seconds from the first submission (the
    engine's load prints its lines as it goes: they are sent as they come)."""
    import time as clock

    offset = clock.time() - clock.monotonic()  # the wall clock at `began`
    start = began + offset
    at = [("placed", job.placed_at), ("started", job.started_at)]
    for label, text in FIRST:
        event = job.events.filter(data__line__startswith=text).order_by("seq").first()
        if event is not None:
            at.append((label, event.created_at))
    at.append(("finished", job.finished_at))
    print("\nthe first job (it starts the engine), seconds from the first submission:")
    for label, when in at:
        print(f"  {label:<20} {when.timestamp() - start:7.2f}")


def phases(jobs) -> None:
    """The median time of each step of the warm jobs, from the portal's records (each event is
    stamped when the portal stored it: the node sends a job's output in batches, so steps
    inside the engine's run show only where a batch ended), and the gap between two jobs."""
    import statistics

    rows = []
    for job in jobs:
        at = {"placed": job.placed_at, "started": job.started_at, "finished": job.finished_at}
        for event in job.events.order_by("seq"):
            text = event.data.get("line") or event.data.get("message") or ""
            for name, start in MARKS:
                if start and name not in at and text.startswith(start):
                    at[name] = event.created_at
        if all(name in at and at[name] for name, _ in MARKS):
            rows.append([(at[b] - at[a]).total_seconds() for (a, _), (b, _) in STEPS])
    if not rows:
        print("(no warm job had every mark)")
        return
    print(f"\nwhere a warm job's time goes (median of {len(rows)} jobs, seconds):")
    for i, ((a, _), (b, _)) in enumerate(STEPS):
        print(f"  {a:>10} -> {b:<10} {statistics.median(r[i] for r in rows):7.3f}")
    print(f"  {'placed':>10} -> {'finished':<10} {statistics.median(sum(r) for r in rows):7.3f}")
    ordered = sorted(jobs, key=lambda job: job.started_at)
    gaps = [
        (after.placed_at - before.finished_at).total_seconds()
        for before, after in zip(ordered, ordered[1:], strict=False)
    ]
    if gaps:
        print(
            f"  between two jobs on the slot (one finished -> the next placed): median "
            f"{statistics.median(gaps):.3f}, max {max(gaps):.3f}"
        )


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
        seconds = {
            "portal (one node, one slot)": portal(cache, paths, work),
            f"{args.n} cold `boltz predict`": cold(cache, paths, work),
            "one `boltz predict` over a directory": directory(cache, folder, work),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.n} small predictions (tiny random Boltz-2, CPU, 10 sampling steps)")
    print(f"{'':<40}{'s total':>9}{'s / prediction':>16}")
    for name, total in seconds.items():
        print(f"{name:<40}{total:>9.1f}{total / args.n:>16.2f}")
    ours, cold_, dir_ = seconds.values()
    print(
        f"\nportal vs cold processes: {cold_ / ours:.1f}x faster (goal >= 4x: "
        f"{'met' if cold_ / ours >= 4 else 'missed'}); portal vs the directory run: "
        f"{ours / dir_:.2f}x its time (goal <= 1.25x: {'met' if ours / dir_ <= 1.25 else 'missed'})"
    )


if __name__ == "__main__":
    main()
