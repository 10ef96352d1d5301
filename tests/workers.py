"""What keeps test runs side by side apart: pytest-xdist's workers (`make test` runs two).

Each worker (`PYTEST_XDIST_WORKER`, gw0, gw1, ...) works in a directory of its own under
`var/test/`, on Redis databases of its own, and, through pytest-django, on a test database of
its own; the processes its tests start (servers, schedulers, nodes, engines) are handed its
settings. What workers share is written so that two writers never clash: the tiny Boltz-2
cache (`var/test/boltz-cache`) and the `boltz predict` reference outputs (tests/boltzkit.py).
"""

import os
from urllib.parse import urlsplit, urlunsplit

MAX_WORKERS = 8  # Redis has 16 databases: 0-7 for the portal's own, 8-15 for the test broker


def worker_index() -> int:
    """0 outside xdist or in its first worker, 1 in the second, and so on."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name.removeprefix("gw"))
    if index >= MAX_WORKERS:
        raise RuntimeError(f"the test suite runs on at most {MAX_WORKERS} workers (pytest -n)")
    return index


def redis_database(url: str, index: int) -> str:
    """`url` with its database number moved on by `index`."""
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + index
    return urlunsplit(parts._replace(path=f"/{database}"))


def worker_environment(environ, base) -> None:
    """Set the test run's PORTAL_WORKDIR in `environ` (`base`), and in a worker its own
    (`base/gw0`, ...) and its own REDIS_URL. A worker inherits `base` from the run's first
    process, which set it before starting the workers; the processes a test starts are given
    their worker's directory, and keep it and the rest of what they are given."""
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker and environ.get("PORTAL_WORKDIR") == str(base):
        environ["PORTAL_WORKDIR"] = str(base / worker)
        if environ.get("REDIS_URL"):
            environ["REDIS_URL"] = redis_database(environ["REDIS_URL"], worker_index())
    environ.setdefault("PORTAL_WORKDIR", str(base))
