"""The node pool page's stream under a burst of changes (jobs starting and ending)."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from channels.db import database_sync_to_async

from nodes.consumers import COALESCE_SECONDS, NodePoolConsumer
from nodes.models import Node
from nodes.services import node_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.database]


def test_a_burst_of_changes_reaches_the_page_as_a_few_snapshots_the_last_one_current():
    node_create(name="gpu01", cpu_slots=2)
    frames = []

    async def burst():
        loop = asyncio.get_running_loop()
        consumer = NodePoolConsumer()

        async def send_json(content):
            frames.append((loop.time(), content))

        consumer.send_json = send_json
        changes = []
        for n in range(100):  # half a second of changes, 200 a second
            if n == 99:
                await database_sync_to_async(Node.objects.update)(enabled=False)
            changes.append(loop.time())
            await consumer.pool_changed({"type": "pool.changed"})
            await asyncio.sleep(0.005)
        last_change = loop.time()
        await asyncio.sleep(COALESCE_SECONDS + 0.5)
        return changes, last_change

    # On a thread of its own: the browser tests leave an event loop running on this one.
    with ThreadPoolExecutor(1) as thread:
        changes, last_change = thread.submit(asyncio.run, burst()).result()

    # The first change shows at once, before the second is made; then about one snapshot per
    # COALESCE_SECONDS of the burst (however long a busy machine made it), not 100.
    assert changes[0] <= frames[0][0] < changes[1]
    assert 2 <= len(frames) <= 2 + (last_change - changes[0]) / COALESCE_SECONDS
    # The last snapshot was taken after the last change, and shows it.
    assert frames[-1][0] >= last_change - 0.01
    assert frames[-1][1]["nodes"][0]["enabled"] is False
    assert frames[0][1]["nodes"][0]["enabled"] is True
