"""Resident engines: one long-lived process per node slot (GPU) and engine, which loads its
model once and then runs job after job, instead of every job paying for a fresh process and a
model load.

A runner talks to its slot's engine over a Unix socket, one connection per job:

- runner to engine: one JSON line, the request (`Engine.run` gets it);
- engine to runner: the job's output lines, marked metric and progress lines included, exactly
  as a subprocess job prints them; then `##portal-end {"status": "ok"}` (or "error").

Closing the connection asks the engine to stop the job: `EngineJob.cancelled` turns true. An
engine that does not stop within the grace period is killed, process group and all, like a
subprocess job, and the slot's next job starts a new one. An engine with no work for
PORTAL_ENGINE_IDLE_SECONDS, or whose node process is gone, exits and frees its GPU.

Run as `python -m jobs.engine --engine dotted.path.EngineClass --socket PATH`.
"""

import argparse
import contextlib
import fcntl
import hashlib
import importlib
import io
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
import traceback
from pathlib import Path

END = "##portal-end "


class EngineJob:
    """What an engine's `run` sees of the job: where to write, and whether to stop."""

    def __init__(self, writer, cancelled: threading.Event):
        self._writer = writer
        self._cancelled = cancelled

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def print(self, line: str) -> None:
        self._writer.write(line + "\n")
        self._writer.flush()


class Engine:
    """An engine: `load` once, then `run` one request after another."""

    def load(self) -> None:
        pass

    def run(self, request: dict, job: EngineJob) -> None:
        raise NotImplementedError


# --- the engine process ---------------------------------------------------------------------


class _LineWriter(io.TextIOBase):
    """sys.stdout while a job runs: complete lines go to the runner's connection."""

    def __init__(self, connection: socket.socket):
        self._connection = connection
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            if "\n" in self._buffer:
                lines, self._buffer = self._buffer.rsplit("\n", 1)
                with contextlib.suppress(OSError):
                    self._connection.sendall((lines + "\n").encode())
        return len(text)

    def flush(self) -> None:
        pass


def _watch_for_hangup(connection: socket.socket, cancelled: threading.Event) -> None:
    # The runner sends nothing after its request: anything read now is the connection closing.
    with contextlib.suppress(OSError):
        connection.recv(1)
    cancelled.set()


def _serve_one(engine: Engine, connection: socket.socket) -> None:
    reader = connection.makefile("r", encoding="utf-8")
    request = json.loads(reader.readline())
    cancelled = threading.Event()
    threading.Thread(target=_watch_for_hangup, args=(connection, cancelled), daemon=True).start()
    writer = _LineWriter(connection)
    status = {"status": "ok"}
    with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
        try:
            engine.run(request, EngineJob(writer, cancelled))
        except Exception as exc:
            traceback.print_exc()
            status = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        writer.write("\n" if writer._buffer else "")
    with contextlib.suppress(OSError):
        connection.sendall((END + json.dumps(status) + "\n").encode())


def serve(engine_path: str, socket_path: str, idle_seconds: float, node_pid: int | None) -> None:
    module, name = engine_path.rsplit(".", 1)
    engine: Engine = getattr(importlib.import_module(module), name)()
    print(f"engine {engine_path} loading (pid {os.getpid()})", flush=True)
    engine.load()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(4)
    server.settimeout(1.0)
    print(f"engine ready on {socket_path}", flush=True)
    idle_since = time.monotonic()
    try:
        while True:
            try:
                connection, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - idle_since > idle_seconds:
                    print("engine idle; exiting", flush=True)
                    return
                if node_pid and not _alive(node_pid):
                    print("the node process is gone; exiting", flush=True)
                    return
                continue
            with connection:
                _serve_one(engine, connection)
            idle_since = time.monotonic()
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the runner's side ----------------------------------------------------------------------


def socket_path(node: str, engine: str, slot: int) -> Path:
    from django.conf import settings

    path = settings.WORKDIR / "engines" / node / f"{engine.rsplit('.', 1)[-1]}-slot{slot}.sock"
    if len(str(path)) > 100:  # Unix socket paths are limited to about 108 bytes
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"portal-engine-{digest}.sock"
    return path


class EngineRun:
    """A job run by its slot's resident engine, seen by the runner like a subprocess."""

    def __init__(self, kind, context, on_line):
        from django.conf import settings

        from jobs.runner import DONE, job_environment

        self._done = DONE
        self.lines: queue.Queue = queue.Queue(maxsize=10_000)
        self.open_streams = 1
        self.status: dict | None = None
        node = settings.PORTAL_NODE_NAME or "local"
        slot = context.gpu if context.gpu is not None else 0
        self.path = socket_path(node, kind.engine, slot)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file = self.path.with_suffix(".pid")
        self.connection = self._connect()
        if self.connection is None:
            on_line(f"starting the {kind.name} engine on this slot (loading its model)")
            env = job_environment(context.gpu, {})
            self.connection = self._start(kind.engine, env, settings)
        request = {"job_id": context.job_id, **kind.engine_request(context)}
        self.connection.sendall((json.dumps(request) + "\n").encode())
        threading.Thread(target=self._read, daemon=True).start()

    def _connect(self) -> socket.socket | None:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(str(self.path))
        except OSError:
            connection.close()
            return None
        return connection

    def _start(self, engine: str, env: dict, settings) -> socket.socket:
        lock = open(self.path.with_suffix(".lock"), "w")  # noqa: SIM115
        try:
            # One runner starts the engine; another arriving meanwhile waits, then connects.
            fcntl.flock(lock, fcntl.LOCK_EX)
            connection = self._connect()
            if connection is not None:
                return connection
            log_path = self.path.with_suffix(".log")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "jobs.engine",
                    "--engine",
                    engine,
                    "--socket",
                    str(self.path),
                    "--idle",
                    str(settings.PORTAL_ENGINE_IDLE_SECONDS),
                    "--node-pid",
                    os.environ.get("PORTAL_NODE_PID", "0"),
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=open(log_path, "ab"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.pid_file.write_text(str(process.pid))
            while True:
                connection = self._connect()
                if connection is not None:
                    return connection
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the engine exited while loading:\n{tail}")
                time.sleep(0.1)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _read(self) -> None:
        reader = self.connection.makefile("r", encoding="utf-8", errors="replace")
        try:
            for line in reader:
                line = line.rstrip("\n")
                if line.startswith(END):
                    self.status = json.loads(line[len(END) :])
                    if self.status.get("status") != "ok":
                        self.lines.put(f"engine: {self.status.get('error', 'failed')}")
                    break
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        if self.status is None:
            self.lines.put("engine: the engine process ended during the job")
            self.status = {"status": "error"}
        self.lines.put(self._done)

    def exit_code(self) -> int:
        with contextlib.suppress(OSError):
            self.connection.close()
        return 0 if self.status and self.status.get("status") == "ok" else 1

    def stop(self, grace: float) -> None:
        """Ask the engine to stop the job; kill the engine if it does not within `grace`."""
        # Half-close: the engine reads end-of-stream (its cue to cancel) while its last lines
        # and end marker can still come back.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + grace
        while self.status is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.status is None:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(
            FileNotFoundError, ValueError, ProcessLookupError, PermissionError
        ):
            os.killpg(int(self.pid_file.read_text()), signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description="a resident job engine")
    parser.add_argument("--engine", required=True, help="dotted path of the Engine class")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--idle", type=float, default=600)
    parser.add_argument("--node-pid", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    serve(args.engine, args.socket, args.idle, args.node_pid or None)


if __name__ == "__main__":
    main()
