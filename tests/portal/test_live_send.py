"""Sending to a Channels group from synchronous code, also where the calling thread runs an
event loop (a sync call made from inside an async framework)."""

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer

from portal.live import group_send
from tests.conftest import REDIS_TEST_URL, redis_available, require_service


@pytest.fixture
def redis_layer(settings):
    if not redis_available():
        require_service("redis", f"the channel layer tests need {REDIS_TEST_URL}")
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_TEST_URL]},
        }
    }
    return get_channel_layer()


def test_a_sync_send_under_a_running_loop_reaches_the_group(redis_layer):
    async def follow_and_send():
        channel = await redis_layer.new_channel()
        await redis_layer.group_add("watchers", channel)
        try:
            # A blocking, synchronous send from the thread that runs this loop.
            assert group_send("watchers", {"type": "job.events", "events": [{"id": 7}]})
            return await asyncio.wait_for(redis_layer.receive(channel), 5)
        finally:
            await redis_layer.group_discard("watchers", channel)
            await redis_layer.flush()

    # On a thread of its own: the test's own thread may run a loop already (the browser
    # driver's, in a full run), and asyncio.run refuses that.
    received = []
    thread = threading.Thread(target=lambda: received.append(asyncio.run(follow_and_send())))
    thread.start()
    thread.join(10)
    assert received, "the loop raised or never finished (see the thread's traceback)"
    message = received[0]
    assert message == {"type": "job.events", "events": [{"id": 7}]}


def test_without_a_channel_layer_nothing_is_sent(settings):
    settings.CHANNEL_LAYERS = {}
    assert group_send("watchers", {"type": "job.events", "events": []}) is False
