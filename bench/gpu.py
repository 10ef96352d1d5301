"""GPU: what a GPU node runs, on a real NVIDIA GPU, part by part, without the portal itself.

    python bench/gpu.py [--sizes 20,200,500,1000,1500] [--budget 480] [--json FILE]

Nothing here needs the database or the broker: these are the programs a node runs (they import
no Django), driven as its runner drives them. Each part prints its table as it ends; a part
that fails prints why and the others still run.

1. telemetry: what the node's agent reports in its heartbeats (nodes/probe.py: NVML's GPUs,
   driver, memory, utilisation, temperature) and the `check` job's CUDA check.
2. training: the `train` job's program (training/train.py) on a synthetic regression data
   set, on the GPU and on the CPU.
3. warm engine: the tiny random Boltz-2 the tests build (tests/boltzkit.py). 16 predictions
   through one resident engine (jobs/engine_server.py with predictions/engine.py, as a
   node's runner starts it, over its socket) against 4 cold `boltz predict` processes.
4. memory: a Boltz-2 of the released model's widths (boltz's structurev2 training config:
   token_s 384, token_z 128, atom_s 128, atom_z 16, 24 diffusion transformer blocks; the CLI's
   64 pairformer blocks), randomly initialised: the weights cannot be downloaded here, and a
   forward pass costs the same whatever their values. Single proteins of SIZES residues, in
   ascending order, through one engine (the first, smallest, with 10 sampling steps: what a
   job costs besides the model's work; the others with 20): the GPU memory at the peak (NVML,
   the whole device:
   context, weights and the allocator's cache, which is what another job would find taken),
   the time, and `memory_needed` (predictions/memory.py), the figure placement uses.
   One more prediction at the middle size with boltz's defaults (3 recycling steps, 200
   sampling steps) gives the time of an ordinary job.

5. lanes: jobs sharing one GPU (docs/nodes.md: lanes), as a node runs them, each lane its own
   resident engine: 32 design-sized predictions (a 120-residue target and a 15-residue peptide,
   boltz's default steps: 3 recycling, 200 sampling) on the full-width random Boltz-2, at 1, 2,
   4 and 8 lanes (`--lanes`): predictions per hour, the GPU memory at the peak (NVML) and the
   GPU's mean utilisation while they ran, and the gain over one lane. The engines' loads are
   not counted (a lane's engine stays warm between jobs).
6. screen: bench/screen.py's comparison (issue 24) without the portal, on the full-width random
   Boltz-2 and an affinity model of the same trunk (its heads' pairformer AFFINITY_BLOCKS deep,
   an assumption): `--ligands` small ligands against the 120-residue target of part 5 with
   boltz's defaults (3 recycling and 200 sampling steps; affinity 200 steps x 5 samples), each a
   prediction with affinity through one resident engine, against cold `boltz predict` processes
   with affinity (3 of them, their mean times the count); and the affinity pass alone on each
   ligand's RDKit pose against the target's structure (a `poses` screen). Slot-seconds: the
   engine's load and its jobs, or the processes' lives. Goal: cofold at least 4x fewer.

On a machine without CUDA every part says so and runs on the CPU where it can (part 4 with the
first two sizes, part 5 with the tiny model, 4 jobs and 1 and 2 lanes, part 6 with the tiny
model, 4 ligands and 1 cold process): a rehearsal, not a measurement.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from jobs.engine_server import END  # noqa: E402  (after the path)
from nodes import probe  # noqa: E402
from predictions.memory import memory_needed  # noqa: E402

AMINO = "ACDEFGHIKLMNPQRSTVWY"
TARGET = "MKTAYIAKQRQISFVKSHFSRQLE"  # bench/design.py's target
FAST = {"recycling_steps": 0, "sampling_steps": 10, "diffusion_samples": 1}
GiB = 2**30
AFFINITY_BLOCKS = 8  # part 6's assumption for the released affinity heads' pairformer
DEADLINE = float("inf")  # main sets it from --budget


def late() -> bool:
    return time.monotonic() > DEADLINE


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def table(title: str, header: list[str], rows: list[list]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    for row in [header, *rows]:
        print(
            "  ".join(
                str(x).rjust(w) if i else str(x).ljust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    sys.stdout.flush()


# --- 1. telemetry ---------------------------------------------------------------------------


def telemetry(results: dict) -> None:
    from nodes.probe import cuda_works

    gpus = probe.gpu_snapshot()
    results["telemetry"] = {
        "driver": probe.driver_version(),
        "gpus": gpus,
        "system": probe.system_snapshot(),
        "torch": probe.torch_info(),
        "cuda": cuda_works(),
        "boltz": probe.boltz_info(),
    }
    rows = [
        [
            g["index"],
            g["name"],
            f"{g['memory_total'] / GiB:.1f}",
            f"{g['memory_used'] / GiB:.2f}",
            g["utilization"],
            g["temperature"],
        ]
        for g in gpus
    ]
    table(
        f"1. telemetry (NVML, driver {results['telemetry']['driver']}; as the heartbeat "
        "reports it)",
        ["GPU", "name", "GiB", "used GiB", "util %", "°C"],
        rows or [["-", "no GPU", "", "", "", ""]],
    )
    torch_info, cuda = results["telemetry"]["torch"], results["telemetry"]["cuda"]
    print(
        f"torch {torch_info['version']} (CUDA {torch_info.get('cuda_version')}); the check "
        f"job's matmul on the GPU: {'ok' if cuda.get('matmul_ok') else cuda}; boltz "
        f"{results['telemetry']['boltz']['version']}, GPU kernels (cuequivariance) "
        f"{'installed' if results['telemetry']['boltz']['kernels'] else 'not installed'}"
    )


# --- 2. training ----------------------------------------------------------------------------


def training(results: dict, work: Path) -> None:
    rng = random.Random(0)
    data = work / "train.csv"
    with data.open("w") as f:
        f.write("sequence,label\n")
        for _ in range(20000):
            sequence = "".join(rng.choice(AMINO) for _ in range(rng.randint(50, 300)))
            label = sequence.count("K") / len(sequence) + rng.gauss(0, 0.01)
            f.write(f"{sequence},{label:.5f}\n")
    params = {
        "task": "regression", "epochs": 3, "lr": 1e-3, "batch_size": 64, "val_fraction": 0.2,
        "seed": 0, "notes": "", "sequence_column": "sequence", "label_column": "label",
    }  # fmt: skip
    rows, results["training"] = [], {}
    devices = ["cuda", "cpu"] if cuda_available() else ["cpu"]
    for device in devices:
        out = work / f"train-{device}"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        if device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "training.train", "--data", str(data), "--kind", "csv",
             "--out", str(out), "--params", json.dumps(params)],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        seconds = time.monotonic() - began
        if done.returncode:
            raise RuntimeError(f"train on {device} failed: {done.stderr[-2000:]}")
        metrics = (
            json.loads((out / "metrics.json").read_text())
            if (out / "metrics.json").exists()
            else {}
        )
        log = (out / "train.log").read_text().splitlines()
        results["training"][device] = {"seconds": seconds, "metrics": metrics, "log_tail": log[-3:]}
        rows.append([device, f"{seconds:.1f}", log[-1][:80] if log else ""])
    table(
        "2. training: 20,000 sequences of 50-300 residues, 3 epochs, batch 64 (the train job's "
        "program, whole run)",
        ["device", "s", "last log line"],
        rows,
    )


# --- 3 and 4: Boltz-2 through a resident engine ---------------------------------------------


class Peak:
    """The most GPU memory in use on the device (NVML) while it runs (`value`), and the GPU's
    mean utilisation, % (`mean`; None where NVML said nothing), polled every 20 ms."""

    def __init__(self):
        self.value = 0
        self.samples: list[int] = []
        self._stop = threading.Event()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None

    def __enter__(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception:
            return self

        def poll():
            while not self._stop.is_set():
                self.value = max(self.value, pynvml.nvmlDeviceGetMemoryInfo(handle).used)
                self.samples.append(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                time.sleep(0.02)
            pynvml.nvmlShutdown()

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join()


class Engine:
    """A resident Boltz-2 engine process, started and spoken to as a node's runner does."""

    def __init__(self, work: Path, options: dict, gpu: int | None):
        self.work = work
        self.socket = work / "engine.sock"
        self.log = open(work / "engine.log", "w")  # noqa: SIM115  (closed in stop)
        command = [
            sys.executable, "-m", "jobs.engine_server",
            "--engine", "predictions.engine.BoltzEngine", "--kind", "predict",
            "--socket", str(self.socket), "--slot", "0", "--options", json.dumps(options),
        ]  # fmt: skip
        if gpu is not None:
            command += ["--gpu", str(gpu)]
        self.began = time.monotonic()
        self.process = subprocess.Popen(
            command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        while not self.socket.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the engine did not load: {self.tail()}")
            time.sleep(0.05)
        self.load_seconds = time.monotonic() - self.began

    def tail(self) -> str:
        self.log.flush()
        return "".join((self.work / "engine.log").read_text().splitlines(True)[-15:])

    def predict(self, name: str, document: dict, params: dict, **request) -> dict:
        """One job over the engine's socket: a prediction of `document`, or with `request`'s
        `mode="affinity"`, `structure` and `ligand`, the affinity pass on that complex."""
        job = self.work / name
        (job / "out").mkdir(parents=True)
        request = {
            "document": document, "archived": document, "attached": [], "record": name,
            "work": str(job / "boltz"), "out": str(job / "out"), "params": params, **request,
        }  # fmt: skip
        began = time.monotonic()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(str(self.socket))
            connection.sendall((json.dumps(request) + "\n").encode())
            lines = connection.makefile("r", encoding="utf-8")
            status = {"status": "error", "error": "the engine closed the connection"}
            said = []
            for line in lines:
                if line.startswith(END):
                    status = json.loads(line[len(END) :])
                    break
                said.append(line.rstrip())
        status["seconds"] = time.monotonic() - began
        if status["status"] != "ok":
            status["said"] = said[-10:]
        for what in ("confidence", "affinity"):
            found = next((job / "out").glob(f"{what}_*.json"), None)
            if found:
                status[what] = json.loads(found.read_text())
        status["out"] = job / "out"
        return status

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def protein(sequence: str, chain: str = "A") -> dict:
    return {"protein": {"id": chain, "sequence": sequence, "msa": "empty"}}


def candidates(count: int) -> list[dict]:
    """bench/design.py's generation: linear binders of 8-12 residues against its target."""
    rng = random.Random(7)
    return [
        {"version": 1, "sequences": [
            protein(TARGET, "A"),
            protein("".join(rng.choice(AMINO) for _ in range(rng.randint(8, 12))), "B"),
        ]}
        for _ in range(count)
    ]  # fmt: skip


def warm_engine(results: dict, work: Path, cache: dict) -> None:
    import yaml

    gpu = 0 if cuda_available() else None
    options = {k: str(cache[k]) for k in ("cache", "checkpoint", "affinity_checkpoint")}
    (work / "tiny-engine").mkdir()
    engine = Engine(work / "tiny-engine", options, gpu)
    try:
        jobs = [
            engine.predict(f"candidate{i:02d}", document, {**FAST, "seed": i})
            for i, document in enumerate(candidates(16))
        ]
    finally:
        engine.stop()
    failed = [j for j in jobs if j["status"] != "ok"]
    if failed:
        raise RuntimeError(f"{len(failed)} of 16 failed: {failed[0]}")
    cold = []
    kernels = probe.boltz_info()["kernels"]
    for i, document in enumerate(candidates(4)):
        if late() and cold:
            break
        path = work / f"cold{i}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        command = [
            sys.executable, "-m", "boltz.main", "predict", str(path),
            "--out_dir", str(work / f"cold{i}"),
            "--cache", str(cache["cache"]), "--checkpoint", str(cache["checkpoint"]),
            "--accelerator", "gpu" if gpu is not None else "cpu", "--num_workers", "0",
            "--recycling_steps", "0", "--sampling_steps", "10", "--seed", str(i),
        ]  # fmt: skip
        if gpu is None or not kernels:
            command.append("--no_kernels")
        began = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise RuntimeError(f"cold boltz predict failed: {done.stderr[-2000:]}")
        cold.append(time.monotonic() - began)
    warm = [j["seconds"] for j in jobs]
    results["warm_engine"] = {"load": engine.load_seconds, "jobs": warm, "cold": cold}
    per_cold = sum(cold) / len(cold)
    portal = engine.load_seconds + sum(warm)
    table(
        f"3. one generation of 16 candidates (tiny random Boltz-2 on "
        f"{'the GPU' if gpu is not None else 'the CPU'}, 0 recycling, 10 sampling steps)",
        ["", "s", "s / candidate"],
        [
            ["resident engine: its one load", f"{engine.load_seconds:.1f}", ""],
            ["resident engine: 16 jobs", f"{sum(warm):.1f}", f"{sum(warm) / 16:.2f}"],
            ["resident engine: load + 16 jobs", f"{portal:.1f}", f"{portal / 16:.2f}"],
            [f"cold `boltz predict` (mean of {len(cold)}) x 16", f"{per_cold * 16:.1f}",
             f"{per_cold:.2f}"],
        ],
    )  # fmt: skip
    print(f"cold / warm: {per_cold * 16 / portal:.1f}x fewer seconds through the engine")


def full_width_checkpoint(path: Path, affinity: bool = False) -> Path:
    """A randomly initialised Boltz-2 of the released model's widths (see the module's text);
    with `affinity`, the affinity model: the same trunk with the two-member affinity ensemble,
    each head's pairformer AFFINITY_BLOCKS deep (the released heads' depth is not published
    outside their checkpoint)."""
    from tests.boltzkit import affinity_hparams, structure_hparams, write_checkpoint

    hparams = affinity_hparams() if affinity else structure_hparams()
    hparams.update(atom_s=128, atom_z=16, token_s=384, token_z=128)
    hparams["embedder_args"].update(atom_encoder_depth=3, atom_encoder_heads=4)
    hparams["template_args"] = {"template_dim": 64, "template_blocks": 2}
    hparams["score_model_args"].update(
        dim_fourier=256, atom_encoder_depth=3, atom_encoder_heads=4, token_transformer_depth=24,
        token_transformer_heads=16, atom_decoder_depth=3, atom_decoder_heads=4,
        conditioning_transition_layers=2,
    )  # fmt: skip
    hparams["confidence_model_args"]["pairformer_args"] = {
        "num_blocks": 8, "num_heads": 16, "dropout": 0.0,
    }  # fmt: skip
    for member in ("affinity_model_args1", "affinity_model_args2") if affinity else ():
        hparams[member]["pairformer_args"]["num_blocks"] = AFFINITY_BLOCKS
        hparams[member]["transformer_args"]["token_s"] = hparams["token_s"]
    return write_checkpoint(path, hparams)


def memory(results: dict, work: Path, cache: dict, sizes: list[int]) -> None:
    import torch

    began = time.monotonic()
    checkpoint = full_width_checkpoint(work / "full-width.ckpt")
    built = time.monotonic() - began
    parameters = sum(
        t.numel()
        for t in torch.load(checkpoint, mmap=True, weights_only=False)["state_dict"].values()
    )
    gpu = 0 if cuda_available() else None
    options = {"cache": str(cache["cache"]), "checkpoint": str(checkpoint),
               "affinity_checkpoint": str(cache["affinity_checkpoint"])}  # fmt: skip
    (work / "full-engine").mkdir()
    rng = random.Random(1)
    with Peak() as idle:
        engine = Engine(work / "full-engine", options, gpu)
        time.sleep(0.1)
    rows, results["memory"] = [], {"parameters": parameters, "build": built,
                                   "load": engine.load_seconds, "after_load": idle.value,
                                   "sizes": []}  # fmt: skip
    try:
        # The smallest size with 10 sampling steps, twice with one seed: what a job costs
        # besides the model's work, the first time with the replay of the load's random draws,
        # the second with the states kept from it (as a campaign's candidates, one seed).
        # Then the sizes upward (each peak the most so far), and an ordinary job, whose peak
        # only says what the allocator kept from the largest.
        runs = [(sizes[0], FAST, "first of its seed"), (sizes[0], FAST, "same seed again")]
        runs += [(n, FAST | {"sampling_steps": 20}, "") for n in sizes[1:]]
        ordinary = {"recycling_steps": 3, "sampling_steps": 200, "diffusion_samples": 1}
        runs.append((sizes[len(sizes) // 2], ordinary, "boltz's defaults"))
        for number, (n, params, note) in enumerate(runs):
            if late():
                rows.append([n, "", "", "", "", "", "skipped: past --budget"])
                continue
            sequence = "".join(rng.choice(AMINO) for _ in range(n))
            with Peak() as peak:
                done = engine.predict(
                    f"p{number}-{n}",
                    {"version": 1, "sequences": [protein(sequence)]},
                    {**params, "seed": 0},
                )
            estimate = memory_needed(n)
            measured = peak.value and params is not ordinary
            results["memory"]["sizes"].append(
                {"tokens": n, "params": params, "note": note, "peak": peak.value,
                 "estimate": estimate, "seconds": done["seconds"], "status": done["status"],
                 "error": done.get("error")})  # fmt: skip
            rows.append([
                n, f"{params['recycling_steps']}/{params['sampling_steps']}",
                f"{done['seconds']:.1f}", f"{peak.value / GiB:.1f}" if measured else "-",
                f"{estimate / GiB:.1f}", f"{estimate / peak.value:.2f}" if measured else "-",
                note if done["status"] == "ok" else done.get("error", "")[:60],
            ])  # fmt: skip
            if done["status"] != "ok":
                break
    finally:
        engine.stop()
    table(
        f"4. a full-width random Boltz-2 ({parameters / 1e6:.0f} M parameters; built in "
        f"{built:.0f} s, loaded by the engine in {engine.load_seconds:.1f} s; "
        f"{idle.value / GiB:.1f} GiB in use on the GPU after the load)",
        ["tokens", "recycle/steps", "s", "peak GiB", "estimate GiB", "est / peak", ""],
        rows,
    )


def design_sized(count: int) -> list[dict]:
    """A design campaign's predictions: one 120-residue target, a 15-residue peptide each."""
    rng = random.Random(11)
    target = "".join(rng.choice(AMINO) for _ in range(120))
    return [
        {"version": 1, "sequences": [
            protein(target, "A"),
            protein("".join(rng.choice(AMINO) for _ in range(15)), "B"),
        ]}
        for _ in range(count)
    ]  # fmt: skip


def on_lanes(count: int, work: Path, options: dict, gpu, documents, params) -> dict:
    """The documents through `count` warm engines on one GPU, each taking the next waiting
    one as it ends its own: how many, how long (loads not counted), peak memory, utilisation."""
    import queue

    folders = [work / f"lanes{count}-{i}" for i in range(count)]
    engines: list[Engine] = []

    def start(folder: Path) -> None:
        folder.mkdir()
        engines.append(Engine(folder, options, gpu))

    waiting: queue.Queue = queue.Queue()
    for number, document in enumerate(documents):
        waiting.put((number, document))
    done: list[dict] = []

    def serve(engine: Engine) -> None:
        while True:
            try:
                number, document = waiting.get_nowait()
            except queue.Empty:
                return
            done.append(engine.predict(f"d{number:02d}", document, {**params, "seed": 0}))

    def each(target, items) -> None:
        threads = [threading.Thread(target=target, args=(item,)) for item in items]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    with Peak() as peak:
        try:
            each(start, folders)
            if len(engines) != count:
                raise RuntimeError(f"{count - len(engines)} of {count} engines did not load")
            with Peak() as busy:
                began = time.monotonic()
                each(serve, engines)
                elapsed = time.monotonic() - began
        finally:
            for engine in engines:
                engine.stop()
    failed = [d for d in done if d["status"] != "ok"]
    return {
        "lanes": count, "jobs": len(done), "failed": len(failed), "seconds": elapsed,
        "per_hour": (len(done) - len(failed)) * 3600 / elapsed, "peak": peak.value,
        "utilisation": busy.mean, "first_failure": failed[0] if failed else None,
    }  # fmt: skip


def lanes(results: dict, work: Path, cache: dict, counts: list[int], jobs: int) -> None:
    gpu = 0 if cuda_available() else None
    if gpu is not None:
        checkpoint = work / "full-width.ckpt"
        if not checkpoint.exists():
            full_width_checkpoint(checkpoint)
        params = {"recycling_steps": 3, "sampling_steps": 200, "diffusion_samples": 1}
    else:  # a rehearsal
        checkpoint, params = cache["checkpoint"], FAST
        jobs, counts = min(jobs, 4), [c for c in counts if c <= 2]
    options = {"cache": str(cache["cache"]), "checkpoint": str(checkpoint),
               "affinity_checkpoint": str(cache["affinity_checkpoint"])}  # fmt: skip
    documents = design_sized(jobs)
    rows, results["lanes"] = [], []
    for count in counts:
        if late():
            rows.append([count, "", "", "", "", "", "skipped: past --budget"])
            continue
        run = on_lanes(count, work, options, gpu, documents, params)
        results["lanes"].append(run)
        first = results["lanes"][0]["per_hour"]
        rows.append([
            count, f"{run['jobs'] - run['failed']}/{jobs}", f"{run['seconds']:.0f}",
            f"{run['per_hour']:.0f}", f"{run['peak'] / GiB:.1f}" if run["peak"] else "-",
            f"{run['utilisation']:.0f}" if run["utilisation"] is not None else "-",
            f"{run['per_hour'] / first:.2f}x" if first else "-",
        ])  # fmt: skip
        if run["failed"]:
            print(f"{run['failed']} failed at {count} lanes: {run['first_failure']}", flush=True)
            break
    best = max(results["lanes"], key=lambda r: r["per_hour"], default=None)
    table(
        f"5. {jobs} design-sized predictions (120 + 15 residues, "
        f"{params['recycling_steps']}/{params['sampling_steps']} recycling/sampling steps) on "
        f"{'one GPU' if gpu is not None else 'the CPU (a rehearsal)'}, by lanes",
        ["lanes", "done", "s", "per hour", "peak GiB", "GPU util %", "vs 1 lane"],
        rows,
    )
    if best and results["lanes"][0]["per_hour"]:
        gain = best["per_hour"] / results["lanes"][0]["per_hour"]
        print(f"most predictions per hour at {best['lanes']} lanes: {gain:.2f}x one lane "
              f"(goal at least 2.5x: {'met' if gain >= 2.5 else 'missed'})")  # fmt: skip


# --- 6. screen -------------------------------------------------------------------------------


def cold_predict(path: Path, out: Path, cache: dict, options: dict, params: dict, gpu) -> float:
    """One cold `boltz predict` of a YAML with the part's options; its seconds."""
    command = [
        sys.executable, "-m", "boltz.main", "predict", str(path), "--out_dir", str(out),
        "--cache", str(cache["cache"]), "--checkpoint", options["checkpoint"],
        "--affinity_checkpoint", options["affinity_checkpoint"],
        "--accelerator", "gpu" if gpu is not None else "cpu", "--num_workers", "0",
        "--seed", str(params["seed"]),
    ]  # fmt: skip
    for name, value in params.items():
        if name != "seed":
            command += [f"--{name}", str(value)]
    if gpu is None or not probe.boltz_info()["kernels"]:
        command.append("--no_kernels")
    began = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"cold boltz predict failed: {done.stderr[-2000:]}")
    return time.monotonic() - began


def screen(results: dict, work: Path, cache: dict, count: int) -> None:
    """bench/screen.py's three ways without the portal: `count` ligands against one target,
    each a prediction with affinity through one resident engine (a `cofold` screen's children
    on a warm slot), cold `boltz predict` processes (a few, their mean times `count`), and the
    affinity pass alone on each ligand's RDKit pose against the target's predicted structure
    (a `poses` screen's children)."""
    import yaml

    from bench.screen import ligands, poses
    from predictions import complexes

    gpu = 0 if cuda_available() else None
    if gpu is not None:
        checkpoint, affinity = work / "full-width.ckpt", work / "full-width-affinity.ckpt"
        if not checkpoint.exists():
            full_width_checkpoint(checkpoint)
        full_width_checkpoint(affinity, affinity=True)
        target = design_sized(1)[0]["sequences"][0]["protein"]["sequence"]
        params = {"recycling_steps": 3, "sampling_steps": 200, "diffusion_samples": 1,
                  "sampling_steps_affinity": 200, "diffusion_samples_affinity": 5}  # fmt: skip
        colds = 3
    else:  # a rehearsal
        checkpoint, affinity = cache["checkpoint"], cache["affinity_checkpoint"]
        target, count, colds = TARGET, min(count, 4), 1
        params = {**FAST, "sampling_steps_affinity": 10, "diffusion_samples_affinity": 1}
    params["seed"] = 0
    options = {"cache": str(cache["cache"]), "checkpoint": str(checkpoint),
               "affinity_checkpoint": str(affinity)}  # fmt: skip
    chosen = ligands(count)

    def cofold(name: str, smiles: str) -> dict:
        return {
            "version": 1,
            "sequences": [protein(target), {"ligand": {"id": "B", "smiles": smiles}}],
            "properties": [{"affinity": {"binder": "B"}}],
        }

    (work / "screen-engine").mkdir()
    engine = Engine(work / "screen-engine", options, gpu)
    with Peak() as peak:
        try:
            # The target alone, for the poses to sit against.
            alone = engine.predict("target", {"version": 1, "sequences": [protein(target)]}, params)
            if alone["status"] != "ok":
                raise RuntimeError(f"the target's prediction failed: {alone}")
            structure = next(alone["out"].glob("target_model_0.cif"))
            folded = [engine.predict(n, cofold(n, smiles), params) for n, smiles in chosen]
            posed = []
            blocks = poses(chosen).decode().split("$$$$\n")
            for (name, _), block in zip(chosen, blocks, strict=False):
                sdf = work / f"{name}.sdf"
                sdf.write_text(block + "$$$$\n")
                complex_ = complexes.read_complex(
                    structure, ligand=sdf, mols=Path(cache["cache"]) / "mols"
                )
                posed.append(engine.predict(
                    f"{name}-pose", complexes.document(complex_), params,
                    mode="affinity", structure=str(structure), ligand=str(sdf),
                ))  # fmt: skip
        finally:
            engine.stop()
    failed = [j for j in folded + posed if j["status"] != "ok" or "affinity" not in j]
    if failed:
        raise RuntimeError(f"{len(failed)} of {2 * count} failed: {failed[0]}")
    cold = []
    for number, (name, smiles) in enumerate(chosen[:colds]):
        if late() and cold:
            break
        path = work / f"cold-{name}.yaml"
        path.write_text(yaml.safe_dump(cofold(name, smiles), sort_keys=False))
        cold.append(cold_predict(path, work / f"cold-{number}", cache, options, params, gpu))
    warm = sum(j["seconds"] for j in folded)
    pose_seconds = sum(j["seconds"] for j in posed)
    per_cold = sum(cold) / len(cold)
    results["screen"] = {
        "ligands": count, "target_residues": len(target), "params": params,
        "load": engine.load_seconds, "cofold": [j["seconds"] for j in folded],
        "poses": [j["seconds"] for j in posed], "cold": cold, "peak": peak.value,
    }  # fmt: skip
    cofold_total = engine.load_seconds + warm
    per = lambda seconds: f"{seconds / count:.2f}"  # noqa: E731
    table(
        f"6. a screen of {count} ligands against a {len(target)}-residue target ("
        f"{'a full-width random Boltz-2 and affinity model on the GPU' if gpu is not None else 'the tiny model on the CPU: a rehearsal'}; "  # noqa: E501
        f"{params['recycling_steps']}/{params['sampling_steps']} recycling/sampling steps, "
        f"affinity {params['sampling_steps_affinity']} steps x "
        f"{params['diffusion_samples_affinity']} samples"
        f"{f'; peak {peak.value / GiB:.1f} GiB' if peak.value else ''})",
        ["", "slot-s", "per ligand"],
        [
            ["resident engine: its one load", f"{engine.load_seconds:.1f}", ""],
            ["cofold: load + one job a ligand", f"{cofold_total:.1f}", per(cofold_total)],
            [f"cold `boltz predict` with affinity (mean of {len(cold)}) x {count}",
             f"{per_cold * count:.1f}", f"{per_cold:.2f}"],
            ["poses: the affinity pass a pose", f"{pose_seconds:.1f}", per(pose_seconds)],
        ],
    )  # fmt: skip
    gain = per_cold * count / cofold_total
    print(
        f"cofold: {gain:.1f}x fewer slot-seconds than cold processes (goal at least 4x: "
        f"{'met' if gain >= 4 else 'missed'}); poses: {warm / pose_seconds:.1f}x cheaper a "
        "ligand than cofold (the engine's jobs alone)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,200,500,1000,1500")
    parser.add_argument("--parts", default="telemetry,warm,memory,training,lanes,screen")
    parser.add_argument("--lanes", default="1,2,4,8", help="lane counts for part 5")
    parser.add_argument("--lane-jobs", type=int, default=32, help="predictions for part 5")
    parser.add_argument("--ligands", type=int, default=16, help="ligands for part 6")
    parser.add_argument(
        "--budget", type=float, default=480, help="seconds after which no new prediction starts"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    from tests.boltzkit import make_boltz_cache

    parts = args.parts.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    if not cuda_available():
        print("CUDA is not available: a rehearsal on the CPU, not a measurement", flush=True)
        sizes = sizes[:2]
    global DEADLINE
    DEADLINE = time.monotonic() + args.budget
    results: dict = {"failed": {}}
    work = Path(tempfile.mkdtemp(prefix="portal-gpu-"))
    try:
        cache = None
        for name, part in [("telemetry", telemetry), ("warm", warm_engine),
                           ("memory", memory), ("training", training),
                           ("lanes", lanes), ("screen", screen)]:  # fmt: skip
            if name not in parts:
                continue
            if late():
                print(f"\n{name}: skipped, past --budget", flush=True)
                continue
            began = time.monotonic()
            try:
                if name in ("warm", "memory", "lanes", "screen") and cache is None:
                    cache = make_boltz_cache(work / "boltz-cache")
                counts = [int(c) for c in args.lanes.split(",")]
                arguments = {"telemetry": (results,), "training": (results, work),
                             "warm": (results, work, cache),
                             "memory": (results, work, cache, sizes),
                             "lanes": (results, work, cache, counts, args.lane_jobs),
                             "screen": (results, work, cache, args.ligands),
                             }[name]  # fmt: skip
                part(*arguments)
            except Exception as exc:  # one part's failure is reported; the others still run
                import traceback

                traceback.print_exc()
                results["failed"][name] = f"{type(exc).__name__}: {exc}"
                print(f"\n{name}: FAILED: {results['failed'][name][:3000]}", flush=True)
            print(f"({name} took {time.monotonic() - began:.0f} s)", flush=True)
    finally:
        if args.json:
            args.json.write_text(json.dumps(results, indent=2, default=str))
        with contextlib.suppress(Exception):
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
