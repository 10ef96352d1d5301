# The jobs tests' fixtures for a node and the runner's queue, used by the screens' tests.
from tests.jobs.conftest import enqueued, make_node  # noqa: F401
