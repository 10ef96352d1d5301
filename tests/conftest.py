"""The people and things every test story starts from.

alice owns "Alice's lab"; bob is a viewer there; erin an editor; charlie has no access.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from portal.accounts.services import token_create
from portal.projects.models import Membership, Role
from portal.projects.services import project_create
from tests.workers import redis_database, worker_index

REPO = Path(__file__).resolve().parent.parent


def require_service(name: str, reason: str):
    """Skip when a service is missing, except in CI, where a missing service is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required in CI: {reason}")
    pytest.skip(f"{name} is not available: {reason}")


# Boltz-2 engines take about 8 s to load, so tests share them as a node's jobs do: an engine
# started with other options, or for another node process, is replaced rather than used
# (jobs/engine_client.py: engine_identity). Every other engine ends with its test, so a test
# that counts loads starts from none; a test marked `fresh_engines` starts with no engine at all.
SHARED_ENGINES = ("BoltzEngine-",)


def _kill_engines(keep_shared: bool) -> None:
    """Resident engines outlive the jobs that started them: end them (but the shared ones),
    with their sockets, status files and logs."""
    for pid_file in (settings.WORKDIR / "engines").glob("**/*.pid"):
        if keep_shared and pid_file.name.startswith(SHARED_ENGINES):
            continue
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
        for path in pid_file.parent.glob(f"{pid_file.stem}.*"):
            path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def clean_workdir(request):
    """Each test starts with empty storage and scratch (the database is pytest-django's)."""
    fresh = request.node.get_closest_marker("fresh_engines") is not None
    _kill_engines(keep_shared=not fresh)
    for name in ["files", "tmp", "scratch"]:
        shutil.rmtree(settings.WORKDIR / name, ignore_errors=True)
    (settings.WORKDIR / "tmp").mkdir(parents=True, exist_ok=True)
    yield
    _kill_engines(keep_shared=True)


@pytest.fixture(scope="session", autouse=True)
def end_engines():
    """No engine outlives the test run."""
    yield
    _kill_engines(keep_shared=False)


@pytest.fixture(scope="session")
def boltz_cache():
    """A Boltz-2 cache for the real `boltz` package, built offline (tests/boltzkit.py): a tiny
    random model stands in for the weights, which cannot be downloaded here. Built once per
    test run, beside the work directory (which tests empty)."""
    from tests.boltzkit import make_boltz_cache

    return make_boltz_cache(settings.WORKDIR.parent / "boltz-cache")


@pytest.fixture
def make_user(django_user_model):
    def make(username, **extra):
        return django_user_model.objects.create_user(
            username=username, password=f"{username}-password", **extra
        )

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def charlie(make_user):
    return make_user("charlie")


@pytest.fixture
def erin(make_user):
    return make_user("erin")


@pytest.fixture
def project(alice, bob, erin):
    project = project_create(name="Alice's lab", by=alice)
    Membership.objects.create(project=project, user=bob, role=Role.VIEWER)
    Membership.objects.create(project=project, user=erin, role=Role.EDITOR)
    return project


@pytest.fixture
def api():
    """`api(user)`: an API client sending that user's real token; `api()` sends none."""

    def client(user=None):
        c = APIClient()
        if user is not None:
            _, key = token_create(user=user, name="tests")
            c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return c

    return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The URL of the database the tests use, for processes the tests start."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def process_env(**extra) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PORTAL_WORKDIR": str(settings.WORKDIR),
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ManagedProcess:
    """A portal command (`manage.py ...`) in a process of its own, on the test database,
    in a process group of its own (so a test can kill it and all its children at once)."""

    def __init__(self, name: str, args: list[str], port: int | None = None, **env):
        self.name, self.args, self.port, self.env = name, args, port, env
        self.start()

    def start(self):
        logs = settings.WORKDIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{self.name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *self.args],
            cwd=REPO,
            env=process_env(**self.env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.port is not None:
            self.wait_for(lambda: _port_open(self.port), f"{self.name} to listen on {self.port}")

    def restart(self):
        self.stop()
        self.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, condition, what: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gave up waiting for {what}:\n{self.output()[-4000:]}")

    def kill(self):
        """kill -9 of the process and everything it started in its group."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever the process started and left behind goes too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class LiveServer(ManagedProcess):
    """`manage.py serve` (Daphne) on a free port."""

    def __init__(self, **env):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        super().__init__("server", ["serve", "--port", str(port)], port=port, **env)


@pytest.fixture
def portal_server(transactional_db):
    server = LiveServer()
    yield server
    server.stop()


# --- the whole pool in real processes --------------------------------------------------------

FAST = {
    # Timings shortened so a test sees in seconds what takes minutes in production.
    "PORTAL_HEARTBEAT_INTERVAL": 1,
    "PORTAL_NODE_OFFLINE_AFTER": 4,
    "PORTAL_SCHEDULER_INTERVAL": 0.5,
    "PORTAL_PLACEMENT_TIMEOUT": 20,
    "PORTAL_Q_POLL": 0.05,
}
# The Redis broker's test database: one for each of the run's workers (tests/workers.py).
REDIS_TEST_URL = redis_database("redis://127.0.0.1:6379/8", worker_index())


def redis_available() -> bool:
    import redis

    try:
        return redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=1).ping()
    except redis.RedisError:
        return False


class PortalClient:
    """A script's view of the portal: its API over HTTP with a user's token."""

    def __init__(self, url: str, user):
        import requests

        _, key = token_create(user=user, name="stack")
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {key}"

    def get(self, path, **kwargs):
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.session.post(self.url + path, json=json, timeout=30, **kwargs)

    def submit(self, project, kind="sleep", params=None, **extra) -> dict:
        response = self.post(
            "/api/v1/jobs/", {"project": project.pk, "kind": kind, "params": params or {}, **extra}
        )
        assert response.status_code in (200, 201), response.text
        return response.json()


class Stack:
    """The portal (Daphne), the scheduler and nodes (`runnode`), each a process of its own."""

    def __init__(self, broker: str, **env):
        self.env = {**FAST, **env}
        if broker == "redis":
            import redis

            redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        self.env["REDIS_URL"] = REDIS_TEST_URL if broker == "redis" else ""
        self.broker = broker
        self.server = LiveServer(**self.env)
        self.url = self.server.url
        self.scheduler = ManagedProcess("scheduler", ["runscheduler"], **self.env)
        self.nodes: dict[str, ManagedProcess] = {}

    def add_nodes(self, *names: str, cpu_slots: int = 1, **env) -> None:
        """Start nodes (`runnode`), with more environment for them if given (PORTAL_FAKE_GPUS
        gives one GPUs)."""
        from nodes.models import Node
        from nodes.services import node_create

        for name in names:
            _, token = node_create(name=name, cpu_slots=cpu_slots)
            self.nodes[name] = ManagedProcess(
                name,
                ["runnode", name, "--portal", self.url, "--threads-per-slot", "1"],
                PORTAL_NODE_TOKEN=token,
                **{**self.env, **env},
            )
        for name in names:
            node = self.nodes[name]
            node.wait_for(
                lambda n=name: Node.objects.filter(
                    name=n, last_heartbeat_at__isnull=False
                ).exists(),
                f"node {name} to register",
            )
            node.wait_for(
                lambda n=node: "running." in n.output(), f"node {name}'s cluster to start"
            )

    def client(self, user) -> PortalClient:
        return PortalClient(self.url, user)

    def stop(self):
        """The test is over: every process of the pool, and what it started, is killed at
        once (a test that needs a graceful stop asks for it: `stop`, `restart`)."""
        for process in [*self.nodes.values(), self.scheduler, self.server]:
            process.kill()
            process.log.close()


def pytest_collection_modifyitems(config, items):
    """The Redis broker goes with PostgreSQL (production); SQLite goes with the ORM broker (the
    embedded default). On SQLite the Redis variants of the pool tests are left out."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return
    redis = [
        i
        for i in items
        if getattr(i, "callspec", None) and i.callspec.params.get("stack") == "redis"
    ]
    if redis:
        config.hook.pytest_deselected(items=redis)
        items[:] = [i for i in items if i not in redis]


@pytest.fixture(params=["orm", "redis"])
def stack(request, transactional_db):
    """The pool with Django-Q2's ORM broker, then with its Redis broker."""
    if request.param == "redis" and not redis_available():
        require_service("redis", f"the Redis broker tests need {REDIS_TEST_URL}")
    pool = Stack(request.param)
    yield pool
    pool.stop()


def wait_until(condition, timeout: float = 30, every: float = 0.1, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def orm_stack(transactional_db):
    """The pool with the ORM broker only (for tests whose subject is not the broker)."""
    pool = Stack("orm")
    yield pool
    pool.stop()


@pytest.fixture
def boltz_stack(boltz_cache, transactional_db):
    """The pool in processes of its own (ORM broker), with the tiny model as the node's
    Boltz-2 weights and the portal's molecules."""
    pool = Stack(
        "orm",
        PORTAL_BOLTZ_CACHE=boltz_cache["cache"],
        PORTAL_BOLTZ_CHECKPOINT=boltz_cache["checkpoint"],
        PORTAL_BOLTZ_AFFINITY_CHECKPOINT=boltz_cache["affinity_checkpoint"],
    )
    yield pool
    pool.stop()


def boltz_ready(name: str) -> bool:
    """Whether node `name` has reported that it can predict."""
    from nodes.models import Node

    node = Node.objects.filter(name=name).first()
    return bool(node and node.can_run("boltz"))
