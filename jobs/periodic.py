"""Work the scheduler (`manage.py runscheduler`) does now and then besides its sweep. Another
app registers its own from its AppConfig.ready (a cache's clean-up, say), so the
scheduler runs it without the jobs app importing that app."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("jobs.scheduler")


@dataclass
class Periodic:
    name: str
    run: Callable[[], object]
    every: Callable[[], float]  # seconds, read when due (a setting tests may change)
    due: float = field(default=0.0)  # monotonic time; 0: at the scheduler's start


_registered: dict[str, Periodic] = {}


def register(name: str, run: Callable[[], object], *, every: Callable[[], float]) -> None:
    _registered[name] = Periodic(name, run, every)


def run_due() -> None:
    """Run what is due; a failure is logged and tried again when next due."""
    now = time.monotonic()
    for task in _registered.values():
        if now >= task.due:
            task.due = now + task.every()
            try:
                task.run()
            except Exception:
                log.exception("%s failed", task.name)
