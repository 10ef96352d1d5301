"""The marker protocol: how a running job reports metrics and progress, as marked lines on its
standard output.

A job program calls `metric(...)` and `progress(...)`; every other line it prints is a log line.
The runner turns marked lines into events. Kept free of Django so job programs, which run
in bare subprocesses, can import it.
"""

import json
import math
import sys

MARKER = "##portal "


def marked(payload: dict) -> str:
    """The line that carries an event."""
    return MARKER + json.dumps(payload, separators=(",", ":"))


def _emit(payload: dict) -> None:
    sys.stdout.write(marked(payload) + "\n")
    sys.stdout.flush()


def metric(step: int, name: str, value: float) -> None:
    """A metric point: `name` (loss, accuracy, …) at `step` (epoch, generation, …)."""
    _emit({"type": "metric", "step": step, "name": name, "value": value})


def progress(percent: float, message: str = "") -> None:
    _emit({"type": "progress", "percent": percent, "message": message})


def parse(line: str) -> dict:
    """The event a line of output stands for."""
    if line.startswith(MARKER):
        try:
            payload = json.loads(line[len(MARKER) :])
        except ValueError:
            payload = None
        event = _checked(payload) if isinstance(payload, dict) else None
        if event is not None:
            return event
    return {"type": "log", "line": line}


def _number(value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _checked(payload: dict) -> dict | None:
    """A marked line from a job is input like any other: only well-formed events pass."""
    if payload.get("type") == "metric":
        name, step, value = payload.get("name"), payload.get("step"), _number(payload.get("value"))
        if (
            isinstance(name, str)
            and 0 < len(name) <= 100
            and isinstance(step, int)
            and value is not None
        ):
            return {"type": "metric", "step": step, "name": name, "value": value}
    if payload.get("type") == "progress":
        percent = _number(payload.get("percent"))
        message = payload.get("message", "")
        if percent is not None and isinstance(message, str):
            return {
                "type": "progress",
                "percent": max(0.0, min(100.0, float(percent))),
                "message": message[:500],
            }
    return None
