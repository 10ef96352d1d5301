"""The runner's side of resident engines (the engine process is jobs/engine_server.py).

`EngineRun` is a job run by its slot's engine, seen by the runner like a subprocess: lines to
read, `stop`, `exit_code`. If the slot has no engine for the kind yet, the run starts one, and
its start is supervised like the job itself: what the engine prints while its model loads goes
to the job's log, a cancel or a limit kills the engine still loading (the slot's next job
starts a fresh one), and a load that fails fails the job with the engine's own error.

Engines are keyed by (node, slot, engine class): a CPU slot and a GPU never share one. An idle
engine of another kind that holds GPU memory a job needs is stopped before the job starts
(`make_room`, which the runner calls for every job on a GPU).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings

from jobs.engine_server import END, LOAD_FAILED, NODE_ONLY, alive
from jobs.processes import DONE, job_environment
from nodes.probe import warm_engines


def engines_dir(node: str) -> Path:
    return settings.WORKDIR / "engines" / node


def socket_path(node: str, engine: str, slot: int) -> Path:
    path = engines_dir(node) / f"{engine.rsplit('.', 1)[-1]}-slot{slot}.sock"
    if len(str(path)) > 100:  # Unix socket paths are limited to about 108 bytes
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"portal-engine-{digest}.sock"
    return path


def engine_identity(kind) -> str:
    """What a kind's engine on this node is started with: its class, the node's options for it,
    its kind's environment and the node process it serves. An engine found running with
    another identity (the node's weights were changed, or it outlived an earlier run of the
    node) is replaced, not used."""
    started_with = [
        kind.engine,
        kind.engine_options(),
        kind.engine_environment(),
        os.environ.get("PORTAL_NODE_PID", "0"),
    ]
    return hashlib.sha256(json.dumps(started_with, sort_keys=True).encode()).hexdigest()[:16]


def _kill_group(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        os.killpg(int(pid_file.read_text()), signal.SIGKILL)


class EngineRun:
    error_prefix = "its engine failed: "

    def __init__(self, kind, context):
        self.kind = kind
        self.context = context
        self.lines: queue.Queue = queue.Queue(maxsize=10_000)
        self.open_streams = 1
        self.status: dict | None = None
        self.error: str | None = None  # the engine's own error, when it failed
        node = settings.PORTAL_NODE_NAME or "local"
        self.path = socket_path(node, kind.engine, context.slot)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file = self.path.with_suffix(".pid")
        self.identity = engine_identity(kind)
        self.connection: socket.socket | None = None
        self._stopping = threading.Event()
        threading.Thread(target=self._run, name="engine-run", daemon=True).start()

    # --- the run, on a thread of its own ----------------------------------------------------
    def _run(self) -> None:
        try:
            self._replace_if_other()
            connection = self._connect() or self._start()
            if connection is not None:
                self.connection = connection
                request = {"job_id": self.context.job_id, **self.kind.engine_request(self.context)}
                connection.sendall((json.dumps(request) + "\n").encode())
                self._read(connection)
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self.lines.put(DONE)

    def _fail(self, error: str) -> None:
        self.error = self.error or error
        self.status = {"status": "error", "error": self.error}
        self.lines.put(f"engine: {self.error}")

    def _replace_if_other(self) -> None:
        """Stop the slot's engine if it was started with another identity (engine_identity)."""
        try:
            status = json.loads(self.path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            return  # no engine, or one that is starting or stopping: connecting will tell
        if status.get("identity") == self.identity:
            return
        self.lines.put(
            f"the {self.kind.name} engine on slot {self.context.slot} was started with other "
            "options or for another run of this node; starting a new one"
        )
        with contextlib.suppress(ProcessLookupError, PermissionError, KeyError, TypeError):
            os.killpg(status["pid"], signal.SIGKILL)
        for suffix in (".sock", ".json"):
            with contextlib.suppress(FileNotFoundError):
                self.path.with_suffix(suffix).unlink()

    def _connect(self) -> socket.socket | None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(self.path))
        except OSError:
            connection.close()
            return None
        return connection

    def _start(self) -> socket.socket | None:
        """Start the slot's engine and follow its load; its connection once it is ready, or
        None if it failed or was stopped while loading."""
        with open(self.path.with_suffix(".lock"), "w") as lock:
            # One run starts the slot's engine; another arriving meanwhile waits, then connects.
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self._stopping.wait(0.1):
                        self.status = {"status": "stopped"}
                        return None
            connection = self._connect()
            if connection is not None:
                return connection
            self.lines.put(f"starting the {self.kind.name} engine on slot {self.context.slot}")
            return self._load()

    def _load(self) -> socket.socket | None:
        context = self.context
        log_path = self.path.with_suffix(".log")
        log_path.touch()
        offset = log_path.stat().st_size
        argv = [
            sys.executable,
            "-m",
            "jobs.engine_server",
            "--engine",
            self.kind.engine,
            "--kind",
            self.kind.name,
            "--socket",
            str(self.path),
            "--slot",
            str(context.slot),
            "--options",
            json.dumps(self.kind.engine_options()),
            "--idle",
            str(settings.PORTAL_ENGINE_IDLE_SECONDS),
            "--node-pid",
            os.environ.get("PORTAL_NODE_PID", "0"),
            "--identity",
            self.identity,
        ]
        if context.gpu is not None:
            argv += ["--gpu", str(context.gpu)]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=settings.BASE_DIR,
                env=job_environment(context.gpu, self.kind.engine_environment()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        with open(log_path, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            while True:
                self._forward(log)
                if self._stopping.is_set():
                    _kill_group(self.pid_file)
                    process.wait()
                    self.lines.put("engine: stopped while loading")
                    self.status = {"status": "stopped"}
                    return None
                connection = self._connect()
                if connection is not None:
                    self._forward(log)
                    return connection
                if process.poll() is not None:
                    self._forward(log)
                    code = process.returncode
                    self._fail(self.error or f"the engine exited while loading ({code})")
                    return None
                time.sleep(0.1)

    def _forward(self, log) -> None:
        """Lines the loading engine printed, into the job's log (its failure, if it says so)."""
        while line := log.readline():
            if not line.endswith("\n"):
                log.seek(log.tell() - len(line.encode()))  # a line still being written
                return
            line = line.rstrip("\n")
            if line.startswith(LOAD_FAILED):
                self.error = json.loads(line[len(LOAD_FAILED) :]).get("error", "load failed")
            elif not line.startswith(NODE_ONLY):
                self.lines.put(line)

    def _read(self, connection: socket.socket) -> None:
        reader = connection.makefile("r", encoding="utf-8", errors="replace")
        with contextlib.suppress(OSError, ValueError):
            for line in reader:
                line = line.rstrip("\n")
                if line.startswith(END):
                    self.status = json.loads(line[len(END) :])
                    if self.status.get("status") not in ("ok", "stopped"):
                        self._fail(self.status.get("error", "failed"))
                    return
                self.lines.put(line)
        self._fail("the engine process ended during the job")

    # --- what the runner calls ------------------------------------------------------------
    def exit_code(self) -> int:
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.close()
        return 0 if self.status and self.status.get("status") == "ok" else 1

    def stop(self, grace: float) -> None:
        """Stop the job: an engine still loading is killed at once; one running the job is
        asked to stop it, and killed if it has not within PORTAL_ENGINE_STOP_GRACE seconds
        (an engine's own grace, not a process's `grace`: one that stops between its steps
        keeps its model loaded for the next job)."""
        self._stopping.set()
        connection = self.connection
        if connection is not None:
            # Half-close: the engine reads end-of-stream (its cue to cancel) while its last
            # lines and end marker can still come back.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + settings.PORTAL_ENGINE_STOP_GRACE
        while self.status is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.status is None:
            _kill_group(self.pid_file)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def make_room(kind, slot: int, gpu: int | None, needed: int | None, total: int | None, others):
    """Stop idle engines on the job's GPU that it needs the memory of. `others` are the other
    jobs placed on that GPU, lane (slot) → memory estimate: their lanes' engines stay, and so
    does the job's own lane's engine for its engine class. Of the rest, idle ones are stopped
    (the job's own lane's first, then other lanes' of other engine classes) until the job's
    estimate (`needed`) fits the GPU (`total`) beside what stays (with PORTAL_GPU_HEADROOM
    when it shares the GPU); all of them for a job without an estimate. Yields a line for
    the job's log per engine stopped. An engine on a CPU slot holds no GPU memory, and stays.

    An engine that took a job since it was read is not stopped (see jobs/engine_server.py: an
    engine told to stop while it runs a job ends after it)."""
    if gpu is None:
        return
    node = settings.PORTAL_NODE_NAME or "local"
    engine = getattr(kind, "engine", None)
    engines = [e for e in warm_engines(engines_dir(node)) if e.get("gpu") == gpu]

    def held(e) -> int:
        return e.get("memory") or 0

    def stays(e) -> bool:
        return e["slot"] in others or (e["slot"] == slot and e["engine"] == engine)

    staying = [e for e in engines if stays(e)]
    idle = sorted(
        (e for e in engines if not stays(e) and e["state"] == "idle"),
        key=lambda e: (e["slot"] != slot, e["engine"] == engine, e["slot"]),
    )
    busy = [e for e in engines if not stays(e) and e["state"] != "idle"]
    own = sum(held(e) for e in staying if e["slot"] == slot)
    lanes = sum(
        max(estimate or 0, sum(held(e) for e in staying if e["slot"] == lane))
        for lane, estimate in others.items()
    )
    headroom = settings.PORTAL_GPU_HEADROOM if others else 0

    def fits(remaining) -> bool:
        rest = sum(held(e) for e in (*remaining, *busy))
        return bool(needed and total) and lanes + rest + max(needed, own) + headroom <= total

    stopping = []
    while idle and not fits(idle):
        stopping.append(idle.pop(0))
    for found in stopping:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(found["pid"], signal.SIGTERM)
    deadline = time.monotonic() + settings.PORTAL_JOB_KILL_GRACE
    for found in stopping:
        while alive(found["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(found["pid"]) and _still_idle(found):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(found["pid"], signal.SIGKILL)
        lane = "" if found["slot"] == slot else f" (slot {found['slot']})"
        yield f"stopped the idle {found['kind']} engine on this GPU{lane} to make room"


def _still_idle(engine: dict) -> bool:
    """Whether an engine's status file still says it is idle (not running a job it took)."""
    node = settings.PORTAL_NODE_NAME or "local"
    for found in warm_engines(engines_dir(node)):
        if found["pid"] == engine["pid"]:
            return found["state"] == "idle"
    return False
