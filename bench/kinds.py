"""What the benchmarks run: `noop`, a job whose process only says when it started, and the
bare Django-Q2 task it is compared with."""

import os
import subprocess
import sys
import time

from rest_framework import serializers

from jobs.kinds import register
from jobs.kinds.base import Command, CommandKind

# The job: a process that only says when it started.
NOOP = [sys.executable, "-S", "-c", "import time; print('started', time.time())"]


class NoopParams(serializers.Serializer):
    n = serializers.IntegerField(required=False, help_text="tells otherwise equal jobs apart")


class NoopKind(CommandKind):
    name = "noop"
    title = "No-op (benchmarks)"
    gpu = "optional"
    Params = NoopParams

    def build(self, context):
        return Command(NOOP)


register(NoopKind())


def bare_task(log_path: str, submitted: float) -> None:
    """The same job as a bare Django-Q2 task: run the process, note when it started."""
    out = subprocess.run(NOOP, capture_output=True, text=True, check=True).stdout
    started = float(out.split()[1])
    with open(log_path, "a") as log:
        log.write(f"{submitted} {started} {time.time()} {os.getpid()}\n")
