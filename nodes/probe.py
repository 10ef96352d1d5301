"""What a node has: GPUs through NVML, CPU and memory through psutil, engines installed.

No Django here: the agent and the `check` job program both use it, the latter in a bare
subprocess. A host without an NVIDIA driver simply has no GPUs.
"""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psutil


def _nvml():
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml
    except Exception:  # no library, no driver, no device: all mean "no GPUs"
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpu_snapshot() -> list[dict]:
    """One entry per GPU: model, memory total/used (bytes), utilisation %, temperature °C.

    PORTAL_FAKE_GPUS (a JSON list of {"name", "memory_total"}) reports made-up GPUs instead:
    for tests and demonstrations on machines without NVIDIA GPUs, never for real work (a job
    sent to one runs on the CPU)."""
    fake = os.environ.get("PORTAL_FAKE_GPUS")
    if fake:
        return [
            {
                "index": index,
                "name": gpu.get("name", "fake GPU"),
                "uuid": f"fake-{index}",
                "memory_total": int(gpu["memory_total"]),
                "memory_used": 0,
                "utilization": 0,
                "temperature": None,
            }
            for index, gpu in enumerate(json.loads(fake))
        ]
    nvml = _nvml()
    if nvml is None:
        return []
    gpus = []
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu
            except nvml.NVMLError:
                utilization = None
            try:
                temperature = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            except nvml.NVMLError:
                temperature = None
            gpus.append(
                {
                    "index": index,
                    "name": _text(nvml.nvmlDeviceGetName(handle)),
                    "uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
                    "memory_total": int(memory.total),
                    "memory_used": int(memory.used),
                    "utilization": utilization,
                    "temperature": temperature,
                }
            )
    finally:
        nvml.nvmlShutdown()
    return gpus


def driver_version() -> str | None:
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        return _text(nvml.nvmlSystemGetDriverVersion())
    finally:
        nvml.nvmlShutdown()


def system_snapshot() -> dict:
    memory = psutil.virtual_memory()
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),
        "cpu_count": psutil.cpu_count(),
        "memory_total": int(memory.total),
        "memory_used": int(memory.total - memory.available),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def boltz_cache() -> Path:
    return Path(os.environ.get("PORTAL_BOLTZ_CACHE") or Path.home() / ".boltz").expanduser()


def boltz_checkpoint(cache: Path | None = None) -> Path:
    """The Boltz-2 structure checkpoint: PORTAL_BOLTZ_CHECKPOINT, else the cache's."""
    named = os.environ.get("PORTAL_BOLTZ_CHECKPOINT")
    return Path(named).expanduser() if named else (cache or boltz_cache()) / "boltz2_conf.ckpt"


def torch_info(check_cuda: bool = True) -> dict:
    """torch's version, and whether CUDA works (asked in a subprocess: importing torch and
    touching CUDA costs seconds and memory the agent should not keep)."""
    version = _version("torch")
    info = {"version": version, "ready": version is not None, "cuda": False}
    if version is None or not check_cuda:
        return info
    code = (
        "import json, torch\n"
        "ok = torch.cuda.is_available()\n"
        "print(json.dumps({'cuda': ok, 'cuda_version': torch.version.cuda,"
        " 'devices': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]"
        " if ok else []}))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        ).stdout
        info.update(json.loads(out.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError):
        info["error"] = "torch did not answer"
    return info


def boltz_info(cache: Path | None = None, checkpoint: Path | None = None) -> dict:
    """Whether this node can predict: boltz installed, its structure checkpoint (a real file,
    not the empty placeholder that only stops boltz from downloading) and its molecules. The
    cache and checkpoint are PORTAL_BOLTZ_CACHE's and PORTAL_BOLTZ_CHECKPOINT's unless given."""
    version = _version("boltz")
    cache = cache or boltz_cache()
    checkpoint = checkpoint or boltz_checkpoint(cache)
    missing = []
    if not checkpoint.is_file() or checkpoint.stat().st_size == 0:
        missing.append(str(checkpoint))
    if not (cache / "mols").is_dir():
        missing.append(str(cache / "mols"))
    return {
        "version": version,
        "cache": str(cache),
        "checkpoint": str(checkpoint),
        "weights": not missing,
        "missing": missing,
        "kernels": kernels_installed(),
        "ready": version is not None and not missing,
        "fix": (
            "pip install boltz"
            if version is None
            else "no Boltz-2 weights: run `manage.py boltzweights`"
            if missing
            else ""
        ),
    }


def kernels_installed() -> bool:
    """Whether boltz's optional GPU kernels (cuequivariance_torch, `boltz[cuda]`) can load;
    without them a GPU predicts with PyTorch's own operations, slower and in more memory."""
    return importlib.util.find_spec("cuequivariance_torch") is not None


def warm_engines(directory: Path) -> list[dict]:
    """The resident engines running on this node, from the status files they keep beside their
    sockets (jobs/engine_server.py): engine, kind, slot, gpu, pid, state and memory held. A
    file left by an engine that was killed names a process that is gone, and is skipped."""
    found = []
    for path in sorted(directory.glob("*.json")):
        try:
            status = json.loads(path.read_text())
            if psutil.Process(status["pid"]).status() == psutil.STATUS_ZOMBIE:
                continue  # ended, its parent has not reaped it yet
        except psutil.AccessDenied:
            pass  # the process is there, run by another user
        except (psutil.Error, OSError, ValueError, KeyError, TypeError):
            continue  # gone, or a file being replaced
        found.append(status)
    return found


def warm_engine_report(directory: Path) -> list[dict]:
    """The resident engines as a heartbeat reports them (`warm_engines`, without their pids)."""
    keys = ("engine", "kind", "slot", "gpu", "state", "memory")
    return [{k: e.get(k) for k in keys} for e in warm_engines(directory)]


def local_database_version(path: Path) -> str:
    """A local sequence database's version: its size and modification time (an MSA made from
    another version of the file is another cache entry)."""
    stat = path.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def msa_local_info() -> dict:
    """The sequence database this node searches MSAs in (PORTAL_MSA_LOCAL_DB), if any: its
    name and version, and pyhmmer's version."""
    named = os.environ.get("PORTAL_MSA_LOCAL_DB")
    path = Path(named).expanduser() if named else None
    info = {"pyhmmer": _version("pyhmmer"), "database": path.name if path else None}
    if path is not None and path.is_file():
        info["version"] = local_database_version(path)
    info["ready"] = bool(info["pyhmmer"] and info.get("version"))
    return info


def msa_server_info() -> dict:
    """The MSA server this node sends sequences to (PORTAL_MSA_SERVER_URL), if any."""
    url = os.environ.get("PORTAL_MSA_SERVER_URL", "")
    return {"ready": bool(url), "url": url or None}


def af3_info() -> dict:
    """Whether this node runs AlphaFold 3: PORTAL_AF3_COMMAND's program is there (a path, or a
    name on the PATH: `docker`, `python`) and PORTAL_AF3_MODEL_DIR is a folder with files in
    it; PORTAL_AF3_DB_DIR, its genetic databases, only for its own data pipeline."""
    command = shlex.split(os.environ.get("PORTAL_AF3_COMMAND", ""))
    model_dir = Path(os.environ.get("PORTAL_AF3_MODEL_DIR", "")).expanduser()
    db_dir = os.environ.get("PORTAL_AF3_DB_DIR", "")
    program = shutil.which(command[0]) if command else None
    named = bool(os.environ.get("PORTAL_AF3_MODEL_DIR"))
    try:
        has_model = named and any(model_dir.iterdir())
    except OSError:  # not there, not a folder, not readable
        has_model = False
    fix = ""
    if not command:
        fix = "set PORTAL_AF3_COMMAND (how this node runs run_alphafold.py)"
    elif program is None:
        fix = f"PORTAL_AF3_COMMAND's program {command[0]!r} is not there"
    elif not named:
        fix = "set PORTAL_AF3_MODEL_DIR to AlphaFold 3's weights folder"
    elif not has_model:
        fix = f"PORTAL_AF3_MODEL_DIR ({model_dir}) holds no weights"
    return {
        "ready": not fix,
        "fix": fix,
        "version": os.environ.get("PORTAL_AF3_VERSION") or None,
        "databases": bool(db_dir) and Path(db_dir).expanduser().is_dir(),
    }


def af3_model_digest(model_dir: Path, cache: Path) -> str:
    """SHA-256 of AlphaFold 3's weights folder (each file's name and bytes, in name order):
    computed once for each version of its files (their sizes and times) and kept in `cache`,
    since the weights are a gigabyte."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    stamp = hashlib.sha256(
        json.dumps(
            [[str(p.relative_to(model_dir)), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        ).encode()
    ).hexdigest()
    kept = cache / stamp
    if kept.is_file():
        return kept.read_text()
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    cache.mkdir(parents=True, exist_ok=True)
    kept.write_text(digest.hexdigest())
    return digest.hexdigest()


def engines(check_cuda: bool = True) -> dict:
    return {
        "torch": torch_info(check_cuda),
        "boltz": boltz_info(),
        "msa_local": msa_local_info(),
        "msa_server": msa_server_info(),
        "af3": af3_info(),
    }


def cuda_works() -> dict:
    """Whether torch can really compute on this job's GPU (CUDA_VISIBLE_DEVICES)."""
    import torch

    if not torch.cuda.is_available():
        return {"available": False}
    device = torch.device("cuda")
    x = torch.randn(256, 256, device=device)
    value = float((x @ x.T).trace().item())
    return {
        "available": True,
        "device": torch.cuda.get_device_name(device),
        "matmul_ok": value == value,  # not NaN
        "torch_cuda": torch.version.cuda,
    }


def inspect(say=print) -> dict:
    """What this machine has for the portal's jobs: driver and GPUs, torch and CUDA, boltz and
    its weights, the MSA sources; said line by line, returned whole. The `check` job
    (jobs/programs/check.py) and `manage.py checknode` both report it."""
    result = {"host": platform.node(), "python": platform.python_version()}
    result["driver"] = driver_version()
    result["gpus"] = gpu_snapshot()
    say(f"NVIDIA driver: {result['driver'] or 'none'}")
    for gpu in result["gpus"]:
        say(f"GPU {gpu['index']}: {gpu['name']}, {gpu['memory_total'] / 2**30:.1f} GiB")
    result["system"] = system_snapshot()
    result["torch"] = torch_info(check_cuda=False)
    if result["torch"]["version"]:
        import torch

        result["torch"]["cuda"] = cuda_works()
        result["torch"]["threads"] = torch.get_num_threads()
        say(
            f"torch {result['torch']['version']} ({result['torch']['threads']} CPU threads); "
            f"CUDA {'works' if result['torch']['cuda']['available'] else 'not available'}"
        )
    else:
        say("torch: not installed")
    result["boltz"] = boltz_info()
    boltz = result["boltz"]
    if boltz["version"]:
        weights = "present" if boltz["weights"] else f"missing ({', '.join(boltz['missing'])})"
        kernels = "installed" if boltz["kernels"] else "not installed"
        say(
            f"boltz {boltz['version']}; weights in {boltz['cache']}: {weights}; "
            f"GPU kernels (cuequivariance): {kernels}"
        )
    else:
        say("boltz: not installed")
    result["msa_local"] = msa_local_info()
    local = result["msa_local"]
    say(
        f"local MSA database: {local['database'] or 'none'}"
        + (f" (version {local['version']})" if local.get("version") else "")
    )
    result["msa_server"] = msa_server_info()
    say(f"MSA server: {result['msa_server']['url'] or 'none configured'}")
    result["af3"] = af3_info()
    af3 = result["af3"]
    say(f"AlphaFold 3: {'ready' if af3['ready'] else 'not ready (' + af3['fix'] + ')'}")
    return result
