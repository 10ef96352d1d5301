import pytest

# The jobs tests' fixtures for a node and the runner's queue.
from tests.jobs.conftest import enqueued, make_node  # noqa: F401


@pytest.fixture
def boltz_node(boltz_cache, settings, make_node):  # noqa: F811
    """This process's node, with the tiny Boltz-2 model (tests/boltzkit.py) ready."""
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    settings.PORTAL_BOLTZ_CHECKPOINT = str(boltz_cache["checkpoint"])
    settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT = str(boltz_cache["affinity_checkpoint"])
    return make_node(runner=True, engines={"boltz": {"ready": True}})
