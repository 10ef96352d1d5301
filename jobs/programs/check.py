"""The `check` job's program: `python -m jobs.programs.check --out DIR [--sleep SECONDS]`."""

import argparse
import json
import platform
import time
from pathlib import Path

from jobs import report
from nodes import probe


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
    its weights, the MSA sources; said line by line, returned whole. The `check` job and
    `manage.py checknode` both report it."""
    result = {"host": platform.node(), "python": platform.python_version()}
    result["driver"] = probe.driver_version()
    result["gpus"] = probe.gpu_snapshot()
    say(f"NVIDIA driver: {result['driver'] or 'none'}")
    for gpu in result["gpus"]:
        say(f"GPU {gpu['index']}: {gpu['name']}, {gpu['memory_total'] / 2**30:.1f} GiB")
    result["system"] = probe.system_snapshot()
    result["torch"] = probe.torch_info(check_cuda=False)
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
    result["boltz"] = probe.boltz_info()
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
    result["msa_local"] = probe.msa_local_info()
    local = result["msa_local"]
    say(
        f"local MSA database: {local['database'] or 'none'}"
        + (f" (version {local['version']})" if local.get("version") else "")
    )
    result["msa_server"] = probe.msa_server_info()
    say(f"MSA server: {result['msa_server']['url'] or 'none configured'}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sleep", type=float, default=0)
    args = parser.parse_args()

    if args.sleep:
        whole = int(args.sleep)
        for second in range(whole):
            print(f"waiting: {second + 1} of {whole} s", flush=True)
            report.progress(100 * (second + 1) / (whole + 1), "waiting")
            time.sleep(1)
        time.sleep(args.sleep - whole)

    result = inspect(lambda line: print(line, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "check.json").write_text(json.dumps(result, indent=2))
    report.progress(100, "done")
    print("check complete", flush=True)


if __name__ == "__main__":
    main()
