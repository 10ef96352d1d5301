"""Programs of the tests' job kinds: `python -m tests.jobprograms sleep OUT SECONDS LINES ...`."""

import math
import os
import signal
import sys
import time
from pathlib import Path

from jobs import markers
from jobs.engine_server import Engine


def sleep(out, seconds, lines, silent, exit_code, ignore_term, say, *inputs):
    if ignore_term == "True":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"pid={os.getpid()}", flush=True)
    if say:
        print(say, flush=True)
    for path in inputs:
        print(f"input {Path(path).name}: {Path(path).stat().st_size} bytes", flush=True)
    for number in range(int(lines or 0)):
        print(f"line {number}")
    sys.stdout.flush()
    seconds = float(seconds or 0)
    start = time.monotonic()
    end = start + seconds
    # One tick per 0.2 s of the run, each timed from the start: however late a sleep wakes
    # on a busy machine, a run of N seconds prints "tick 1" to "tick N".
    for tick in range(1, math.ceil(seconds * 5 - 1e-9) + 1):
        time.sleep(max(0.0, min(start + tick * 0.2, end) - time.monotonic()))
        if silent != "True" and tick % 5 == 0:
            print(f"tick {tick // 5}", flush=True)
            markers.metric(tick // 5, "ticks", tick / 5)
            markers.progress(100 * (1 - (end - time.monotonic()) / seconds), "sleeping")
    Path(out, "result.txt").write_text(f"slept {seconds}\n")
    print("done", flush=True)
    sys.exit(int(exit_code or 0))


class CounterEngine(Engine):
    """Counts its loads: a resident engine loads once however many jobs it runs. Says where it
    runs, what its kind's environment and the node's options gave it, and holds the GPU
    memory the options say (`memory`, bytes: a stand-in for a model's weights)."""

    loads = 0

    def load(self, options):
        import time

        print(f"greeting={os.environ.get('COUNTER_GREETING')} options={options}", flush=True)
        time.sleep(0.5)  # a model takes a while to load
        CounterEngine.loads += 1
        self.jobs = 0
        self.memory = int(options.get("memory", 0))

    def memory_held(self):
        return self.memory

    def run(self, request, job):
        import os
        import time

        from jobs import markers

        self.jobs += 1
        print(
            f"loads={CounterEngine.loads} jobs={self.jobs} pid={os.getpid()} slot={self.slot} "
            f"gpu={self.gpu}"
        )
        markers.progress(10, "counting")
        end = time.monotonic() + float(request.get("seconds", 0))
        while time.monotonic() < end:
            if job.cancelled and not request.get("ignore_cancel"):
                print("cancelled; stopping")
                return
            time.sleep(0.05)
        if request.get("fail"):
            raise RuntimeError("asked to fail")
        if request.get("oom_marker") and not os.path.exists(request["oom_marker"]):
            # A GPU running out of memory, once per job, as torch says it.
            import torch

            open(request["oom_marker"], "w").close()  # noqa: SIM115
            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)"
            )
        with open(os.path.join(request["out"], "count.txt"), "w") as f:
            f.write(f"{CounterEngine.loads} {self.jobs}\n")
        markers.progress(100, "counted")


class SlowLoadEngine(Engine):
    """Takes a minute to load, saying so as it goes (a large model)."""

    def load(self, options):
        for second in range(60):
            print(f"loading weights: {second}/60 s", flush=True)
            time.sleep(1)

    def run(self, request, job):
        print("ran")


class BrokenEngine(Engine):
    """Cannot load: its weights are missing."""

    def load(self, options):
        print("looking for the weights", flush=True)
        raise FileNotFoundError("no weights at /nowhere/model.ckpt; run `fetch-weights` first")

    def run(self, request, job):
        print("never")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"sleep": sleep}[command](*args)
