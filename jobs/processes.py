"""How a job's own process runs on a node: its environment (its GPU pinned, the portal's
secrets left out), a process group of its own that dies with its runner, and its output read
line by line. Used by the runner for subprocess jobs and by the engine client
(jobs/engine_client.py) to start resident engines. `ThreadRun` runs the work of a runner kind
in a thread of the runner instead, behind the same interface (`Run`)."""

import ctypes
import os
import queue
import shutil
import signal
import subprocess
import threading
from typing import Protocol

from django.conf import settings

from jobs.kinds.base import Command, Output, RunContext

MAX_LINE = 10_000
# Settings a job's process has no business seeing.
HIDDEN_ENV = ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "PORTAL_S3_", "AWS_")
# Put on a run's line queue when one of its output streams ends.
DONE = object()


class Run(Protocol):
    """A started job as the runner watches it: `SubprocessRun`, `ThreadRun`, and
    jobs/engine_client.py's `EngineRun`."""

    lines: queue.Queue  # its output, a line each, and DONE as each of its streams ends
    open_streams: int  # how many DONE end its output
    error: str | None  # what went wrong, where it says so itself (not in its output)
    error_prefix: str  # put before `error` in the job's reason

    def stop(self, grace: float) -> None:
        """Ask it to stop; make it stop after `grace` seconds where that can be done."""

    def exit_code(self) -> int | None:
        """Once its output has ended: 0 when it succeeded."""


# If the runner dies (its node was killed), its job dies too instead of holding the GPU as an
# orphan: the parent-death signal. util-linux's setpriv sets it and execs the job, which keeps
# Python's fast spawn path; without setpriv, a preexec function does it (a slower full fork).
SETPRIV = shutil.which("setpriv")


def _die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# What the numeric libraries read for their thread pools (torch's intra-op threads follow
# OMP_NUM_THREADS).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def job_environment(gpu: int | None, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_ENV)}
    env["CUDA_VISIBLE_DEVICES"] = "" if gpu is None else str(gpu)
    # The slot's share of the host's cores, so that jobs side by side do not each take every
    # core; a limit the node's own environment sets stays.
    if settings.PORTAL_THREADS_PER_SLOT and not any(name in env for name in THREAD_ENV):
        env.update(dict.fromkeys(THREAD_ENV, str(settings.PORTAL_THREADS_PER_SLOT)))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(settings.BASE_DIR), env.get("PYTHONPATH", "")] if p
    )
    env.update(extra)
    return env


class SubprocessRun:
    """A job as a subprocess in a process group of its own, its output read line by line."""

    error_prefix = ""

    def __init__(self, command: Command, context: RunContext):
        self.lines: queue.Queue = queue.Queue(maxsize=10_000)
        argv = [SETPRIV, "--pdeathsig", "KILL", *command.argv] if SETPRIV else command.argv
        self.process = subprocess.Popen(
            argv,
            cwd=context.scratch,
            env=job_environment(context.gpu, command.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=None if SETPRIV else _die_with_parent,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()
        self.open_streams = 2
        self.error = None  # a process tells what went wrong in its output

    def _read(self, stream):
        for raw in stream:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n")[:MAX_LINE])
        self.lines.put(DONE)

    def exit_code(self) -> int | None:
        return self.process.wait()

    def stop(self, grace: float) -> None:
        """SIGTERM to the whole process group, SIGKILL after `grace` seconds."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


class ThreadRun:
    """A runner kind's `run` in a thread of the runner, its lines and progress on the
    same queue as a subprocess's. Stopping asks it to stop (`Output.stopping`) and waits up to
    the grace period; a thread cannot be killed, so work that ignores the request ends on its
    own, and what it would write then is dropped with its superseded run."""

    error_prefix = ""  # the kind's own message is the reason

    def __init__(self, kind, context: RunContext):
        self.lines: queue.Queue = queue.Queue(maxsize=10_000)
        self.output = Output(lambda line: self.lines.put(str(line)[:MAX_LINE]))
        self.open_streams = 1
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(kind, context), daemon=True)
        self._thread.start()

    def _run(self, kind, context) -> None:
        from django.db import connection

        try:
            kind.run(context, self.output)
        except Exception as exc:
            self.error = str(exc) or type(exc).__name__
            self.lines.put(self.error)
        finally:
            connection.close()
            self.lines.put(DONE)

    def exit_code(self) -> int:
        self._thread.join()
        return 1 if self.error else 0

    def stop(self, grace: float) -> None:
        self.output.stopping.set()
        self._thread.join(grace)
