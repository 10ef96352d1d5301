"""`/ws/nodes/` (staff): the node pool, sent whole whenever it changes, and every few seconds
so statuses that change by time passing (a node going offline) show up too."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from nodes.live import POOL_GROUP
from nodes.pool import pool_snapshot

CLOSE_FORBIDDEN = 4403
REFRESH_SECONDS = 2.0


class NodePoolConsumer(AsyncJsonWebsocketConsumer):
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
        if getattr(self, "ticker", None) is not None:
            self.ticker.cancel()
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(POOL_GROUP, self.channel_name)

    async def send_pool(self):
        nodes = await database_sync_to_async(pool_snapshot)()
        await self.send_json(
            {"type": "pool", "nodes": nodes, "offline_after": settings.PORTAL_NODE_OFFLINE_AFTER}
        )

    async def pool_changed(self, message):
        await self.send_pool()

    async def tick(self):
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            await self.send_pool()
