"""`/ws/nodes/` (staff): the node pool, sent whole when it changes (at once, then at most every
COALESCE_SECONDS during a burst), and every few seconds so statuses that change by time passing
(a node going offline) show up too."""

import asyncio

from channels.db import database_sync_to_async
from django.conf import settings

from nodes.live import POOL_GROUP
from nodes.pool import pool_snapshot
from portal.live import CLOSE_FORBIDDEN, OneWayConsumer

REFRESH_SECONDS = 2.0
# A burst of jobs changes the pool hundreds of times a second; a page gets the first change at
# once and then at most one snapshot per COALESCE_SECONDS (the last one after the burst).
COALESCE_SECONDS = 0.25


class NodePoolConsumer(OneWayConsumer):
    sent_at = float("-inf")  # when the last snapshot was taken (event loop clock)
    due: asyncio.Future | None = None  # a snapshot waiting to be sent

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        if self.channel_layer is not None:
            await self.channel_layer.group_add(POOL_GROUP, self.channel_name)
        await self.send_pool()
        self.ticker = asyncio.ensure_future(self.tick())

    async def disconnect(self, code):
        for task in (getattr(self, "ticker", None), self.due):
            if task is not None:
                task.cancel()
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(POOL_GROUP, self.channel_name)

    async def send_pool(self):
        self.sent_at = asyncio.get_running_loop().time()
        nodes = await database_sync_to_async(pool_snapshot)()
        await self.send_json(
            {"type": "pool", "nodes": nodes, "offline_after": settings.PORTAL_NODE_OFFLINE_AFTER}
        )

    async def pool_changed(self, message):
        if self.due is not None:
            return  # a snapshot is on its way, taken after this change
        wait = self.sent_at + COALESCE_SECONDS - asyncio.get_running_loop().time()
        if wait <= 0:
            await self.send_pool()
        else:
            self.due = asyncio.ensure_future(self.send_later(wait))

    async def send_later(self, wait: float):
        await asyncio.sleep(wait)
        self.due = None
        await self.send_pool()

    async def tick(self):
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.send_pool()
