"""The `check` job's program: `python -m jobs.programs.check --out DIR [--sleep SECONDS]`: what
this node has for the portal's jobs (nodes/probe.py: `inspect`), as log lines and `check.json`."""

import argparse
import json
import time
from pathlib import Path

from jobs import markers
from nodes import probe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sleep", type=float, default=0)
    args = parser.parse_args()

    if args.sleep:
        whole = int(args.sleep)
        for second in range(whole):
            print(f"waiting: {second + 1} of {whole} s", flush=True)
            markers.progress(100 * (second + 1) / (whole + 1), "waiting")
            time.sleep(1)
        time.sleep(args.sleep - whole)

    result = probe.inspect(lambda line: print(line, flush=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "check.json").write_text(json.dumps(result, indent=2))
    markers.progress(100, "done")
    print("check complete", flush=True)


if __name__ == "__main__":
    main()
