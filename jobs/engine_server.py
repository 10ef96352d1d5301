"""A resident engine: the long-lived process that loads a kind's model once, then runs job
after job on one slot of a node (its runner's side is jobs/engine_client.py).

An engine is keyed by (slot, engine class): a GPU's engine and a CPU slot's engine are separate
processes, each with its own model in its own memory. It is started by the runner of the first
job that needs it, with the kind's environment and the node's options for it (`--options`),
and prints its progress while it loads; a load that fails prints `##portal-load-failed` with
the error and exits. Then, over a Unix socket, one connection per job:

- runner to engine: one JSON line, the request (`Engine.run` gets it);
- engine to runner: the job's output lines, marked metric and progress lines included, exactly
  as a subprocess job prints them; then `##portal-end {"status": "ok"}` (or "error").

Closing the connection asks the engine to stop the job: `EngineJob.cancelled` turns true. An
engine with no work for PORTAL_ENGINE_IDLE_SECONDS, or whose node process is gone, exits and
frees its memory. Beside its socket it keeps a status file (`.json`: kind, slot, state, the
memory it holds, and the identity its runner gave it), which the node's agent reports in its
heartbeats.

Run as `python -m jobs.engine_server --engine dotted.path.EngineClass --socket PATH ...`.
"""

import argparse
import contextlib
import importlib
import io
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

END = "##portal-end "
LOAD_FAILED = "##portal-load-failed "
# A line of the engine's own log (the node keeps it beside the engine's socket) that its
# runner does not pass on into a job's log: Python's warnings.
NODE_ONLY = "##portal-node "


class Stopped(Exception):
    """Raised by an engine's `run` that stops its job on request (`EngineJob.cancelled`),
    between two steps: the engine goes on serving, its model loaded."""


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
    """An engine: `load` once, then `run` one request after another. `slot` and `gpu` say
    where it runs (`gpu` None on a CPU slot; CUDA_VISIBLE_DEVICES pins that GPU already)."""

    slot: int = 0
    gpu: int | None = None

    def load(self, options: dict) -> None:
        """Load the model. `options` is the node's configuration for the kind (weights, cache
        paths); lines printed here reach the log of the job that waits for the load."""

    def run(self, request: dict, job: EngineJob) -> None:
        raise NotImplementedError

    def memory_held(self) -> int:
        """Bytes of GPU memory this engine holds between jobs (torch's, if it uses CUDA)."""
        torch = sys.modules.get("torch")
        if torch is None or self.gpu is None or not torch.cuda.is_initialized():
            return 0
        return int(torch.cuda.memory_reserved())


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


def _warn_to_the_log(message, category, filename, lineno, file=None, line=None) -> None:
    """Python's warnings (a library's notes to its developers: `pin_memory` on a machine
    without a GPU, …) go to the engine's own log, never into a job's."""
    text = warnings.formatwarning(message, category, filename, lineno, line)
    sys.__stderr__.write("".join(NODE_ONLY + part for part in text.splitlines(keepends=True)))
    sys.__stderr__.flush()


def _watch_for_hangup(connection: socket.socket, cancelled: threading.Event) -> None:
    # The runner sends nothing after its request: anything read now is the connection closing.
    with contextlib.suppress(OSError):
        connection.recv(1)
    cancelled.set()


def _serve_one(engine: Engine, connection: socket.socket, finished) -> None:
    """One job; `finished()` is called after it ran and before the runner hears it ended."""
    reader = connection.makefile("r", encoding="utf-8")
    request = json.loads(reader.readline())
    cancelled = threading.Event()
    threading.Thread(target=_watch_for_hangup, args=(connection, cancelled), daemon=True).start()
    writer = _LineWriter(connection)
    status = {"status": "ok"}
    with contextlib.redirect_stdout(writer), contextlib.redirect_stderr(writer):
        try:
            engine.run(request, EngineJob(writer, cancelled))
        except Stopped as stop:
            print(f"stopped {stop}, as asked; the engine stays loaded", flush=True)
            status = {"status": "stopped"}
        except Exception as exc:
            traceback.print_exc()
            status = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        writer.write("\n" if writer._buffer else "")
    finished()
    with contextlib.suppress(OSError):
        connection.sendall((END + json.dumps(status) + "\n").encode())


class _Status:
    """The status file beside the socket, replaced whole at each change."""

    def __init__(self, path: Path, **fixed):
        self.path = path
        self.fixed = {**fixed, "pid": os.getpid()}

    def write(self, state: str, memory: int = 0) -> None:
        part = self.path.with_suffix(".json.part")
        part.write_text(json.dumps({**self.fixed, "state": state, "memory": memory}))
        part.replace(self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def serve(args) -> None:
    module, name = args.engine.rsplit(".", 1)
    socket_path = Path(args.socket)
    status = _Status(
        socket_path.with_suffix(".json"),
        engine=args.engine,
        kind=args.kind,
        slot=args.slot,
        gpu=args.gpu,
        identity=args.identity,
    )
    # A stopped engine (idle, evicted, its node gone) takes its status file with it; one told
    # to stop as it takes a job (another lane's runner making room at that moment) ends after
    # that job.
    signal.signal(signal.SIGTERM, _stop_when_idle)
    status.write("loading")
    try:
        print(f"engine {args.engine} loading on slot {args.slot} (pid {os.getpid()})", flush=True)
        try:
            engine: Engine = getattr(importlib.import_module(module), name)()
            engine.slot, engine.gpu = args.slot, args.gpu
            engine.load(json.loads(args.options))
        except Exception as exc:
            traceback.print_exc()
            print(LOAD_FAILED + json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            sys.exit(1)
        _listen(engine, socket_path, status, args.idle, args.node_pid or None)
    finally:
        status.remove()


# How long a listening engine waits for a connection before it looks whether it was told to
# stop, has been idle too long, or lost its node process.
ACCEPT_WAIT = 0.2
_listening = threading.Event()
_stop = threading.Event()


def _stop_when_idle(*_) -> None:
    """SIGTERM: a loading engine exits at once; a listening one between two jobs (its loop
    looks every ACCEPT_WAIT seconds), so that a job it has accepted is served whole."""
    if not _listening.is_set():
        sys.exit(0)
    _stop.set()


def _listen(engine, socket_path: Path, status: _Status, idle_seconds, node_pid) -> None:
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(socket_path))
    server.listen(4)
    server.settimeout(ACCEPT_WAIT)
    status.write("idle", engine.memory_held())
    print(f"engine ready on {socket_path}", flush=True)
    idle_since = time.monotonic()
    _listening.set()
    try:
        while not _stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - idle_since > idle_seconds:
                    print("engine idle; exiting", flush=True)
                    return
                if node_pid and not alive(node_pid):
                    print("the node process is gone; exiting", flush=True)
                    return
                continue
            status.write("busy", engine.memory_held())
            # Idle again before the runner hears the job ended: the slot's next job may start
            # at once, and reads the status to see what memory it must make room for.
            with connection:
                _serve_one(engine, connection, lambda: status.write("idle", engine.memory_held()))
            idle_since = time.monotonic()
        # A job that connected as the engine was told to stop is served before it goes.
        server.settimeout(0.0)
        with contextlib.suppress(BlockingIOError, TimeoutError):
            while True:
                connection, _ = server.accept()
                connection.setblocking(True)
                with connection:
                    _serve_one(engine, connection, lambda: status.write("idle", 0))
        print("engine asked to stop; exiting", flush=True)
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()


def alive(pid: int) -> bool:
    """Whether the process runs: a zombie (ended, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: as far as can be told, it runs


def main() -> None:
    parser = argparse.ArgumentParser(description="a resident job engine")
    parser.add_argument("--engine", required=True, help="dotted path of the Engine class")
    parser.add_argument("--kind", required=True, help="the job kind it serves")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--gpu", type=int, default=None)
    parser.add_argument("--options", default="{}", help="the node's options for it, as JSON")
    parser.add_argument("--idle", type=float, default=600)
    parser.add_argument("--node-pid", type=int, default=0)
    parser.add_argument("--identity", default="", help="what it was started with (its runner's)")
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    warnings.showwarning = _warn_to_the_log
    serve(args)


if __name__ == "__main__":
    # Run as the module `jobs.engine_server`, not as `__main__`: an engine imports this module
    # (its Engine and Stopped), and two copies of it would hold two different Stopped classes.
    from jobs import engine_server

    engine_server.main()
