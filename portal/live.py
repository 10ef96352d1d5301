"""Sending to a Channels group from synchronous code, wherever that code runs."""

import asyncio
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def group_send(group: str, message: dict) -> bool:
    """Send `message` to `group`; False when there is no channel layer.

    Synchronous code normally runs in a thread without an event loop (a worker, a runner,
    a view under Daphne's thread pool). Where a loop is running in the caller's thread (a
    sync function called from inside an async framework, such as a browser driver in
    tests), the send goes through a short-lived thread instead, since `async_to_sync`
    refuses that thread. Errors from the layer are raised to the caller.
    """
    layer = get_channel_layer()
    if layer is None:
        return False
    send = async_to_sync(layer.group_send)
    if not _running_loop():
        send(group, message)
        return True
    failure: list[BaseException] = []

    def run():
        try:
            send(group, message)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="group-send")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return True
