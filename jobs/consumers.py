"""`/ws/jobs/<id>/?after=<last event id>`: a job's events, live, each once, in order.

On connect the consumer sends what the client has not seen (events after `after`) from the
database, then every new event as it is published. Published batches can arrive late or out of
order (they come from several processes); anything at or below the last id sent is dropped, and
a gap is filled from the database, so a client sees every id exactly once, in order. A client
that reconnects with its last id carries on where it stopped.
"""

import asyncio
from datetime import datetime
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from jobs.live import job_group
from jobs.models import Job, JobEvent
from portal.ids import parse_id
from portal.live import CLOSE_BAD_REQUEST, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, OneWayConsumer
from portal.metrics import event_push

PAGE = 1000


@database_sync_to_async
def _visible(user, job_id: int) -> bool:
    return Job.objects.filter(pk=job_id, project__memberships__user=user).exists()


@database_sync_to_async
def _events_after(job_id: int, after: int) -> list[dict]:
    events = JobEvent.objects.filter(job_id=job_id, seq__gt=after).order_by("seq")[:PAGE]
    return [event.as_message() for event in events]


class JobConsumer(OneWayConsumer):
    async def connect(self):
        user = self.scope.get("user")
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        # Refusals are accepted first and then closed, so the client learns why (a handshake
        # refused outright reaches a browser as a bare 1006).
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await _visible(user, self.job_id):
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.last = parse_id(query.get("after", ["0"])[0], minimum=0)
        if self.last is None:  # not an event id
            await self.accept()
            await self.close(code=CLOSE_BAD_REQUEST)
            return
        self.lock = asyncio.Lock()
        self.poller = None
        await self.accept()
        if self.channel_layer is not None:
            # Subscribe before reading the backlog: nothing published meanwhile is missed.
            await self.channel_layer.group_add(job_group(self.job_id), self.channel_name)
        await self.catch_up()
        if self.channel_layer is None:
            self.poller = asyncio.ensure_future(self.poll())

    async def disconnect(self, code):
        if getattr(self, "poller", None) is not None:
            self.poller.cancel()
        if self.channel_layer is not None and hasattr(self, "job_id"):
            await self.channel_layer.group_discard(job_group(self.job_id), self.channel_name)

    async def catch_up(self, live: bool = False):
        """Send every stored event after the last one sent (`live`: events that just came,
        not the history a client asked for on connecting)."""
        async with self.lock:
            while events := await _events_after(self.job_id, self.last):
                for event in events:
                    await self.push(event, live)
                self.last = events[-1]["id"]
                if len(events) < PAGE:
                    break

    async def dispatch(self, message):
        # Channels closes stale database connections before every message, in a thread of
        # its own. A live event needs no database (a gap is read through
        # database_sync_to_async, which does that itself), and 200 followers of a job would
        # pay that thread hop 200 times an event.
        if message["type"] == "job.events":
            await self.job_events(message)
        else:
            await super().dispatch(message)

    async def job_events(self, message):
        """A batch published by whichever process stored it."""
        events = [e for e in message["events"] if e["id"] > self.last]
        if not events:
            return
        if events[0]["id"] != self.last + 1:
            await self.catch_up(live=True)  # a gap: an earlier batch is still on its way
            return
        async with self.lock:
            for event in events:
                if event["id"] == self.last + 1:
                    await self.push(event, live=True)
                    self.last = event["id"]

    async def push(self, event: dict, live: bool) -> None:
        await self.send_json(event)
        if live:
            stored = datetime.fromisoformat(event["at"])
            event_push.observe(max(0.0, (timezone.now() - stored).total_seconds()))

    async def poll(self):
        while True:
            await asyncio.sleep(settings.PORTAL_LIVE_POLL)
            await self.catch_up(live=True)
