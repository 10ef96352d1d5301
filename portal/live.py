"""Live streams: the consumers' shared base, and sending to a Channels group from synchronous
code, wherever that code runs."""

import asyncio
import concurrent.futures
import os
import threading

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer

# Close codes a client can tell apart.
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class OneWayConsumer(AsyncJsonWebsocketConsumer):
    """A stream only the server sends on. Whatever a client sends is dropped unread: never
    parsed, so no frame (malformed or deeply nested JSON, binary data) can break the stream.
    Daphne closes the connection on a message over 1 MiB (1009)."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        pass


class NoStreamConsumer(OneWayConsumer):
    """Any WebSocket address that names no stream: closed with 4404, as an unknown page is a
    404 (without it, Channels' router fails with an error in the server's log)."""

    async def connect(self):
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


# How long a send may take before the caller gives up on it (the layer is unreachable).
SEND_TIMEOUT = 10


class _SendLoop:
    """One event loop per process, on a thread of its own, that runs every send.

    `async_to_sync` from a thread without a loop starts a new loop per call, and the Redis
    layer keeps its connections per loop: every send opened a new connection to Redis (a
    runner sends a few per job). One loop keeps them. A forked child (a task worker) starts
    its own, since the parent's thread does not survive the fork.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="group-send", daemon=True)
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_send_loop = _SendLoop()


def group_send(group: str, message: dict) -> bool:
    """Send `message` to `group`; False when there is no channel layer.

    Works from any thread, also one that runs an event loop of its own (a sync function
    called from inside an async framework, such as a browser driver in tests), and returns
    once the layer has taken the message. Errors from the layer, or a send that takes longer
    than SEND_TIMEOUT seconds, are raised to the caller.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _send_loop.get())
    try:
        future.result(timeout=SEND_TIMEOUT)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise
    return True
