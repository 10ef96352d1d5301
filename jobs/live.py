"""Where new job events go once they are stored: to whoever is watching the job live.

`publish` runs after the transaction that stored the events commits, in whatever process
stored them (a node's runner, the web server, the scheduler). With a channel layer (Redis) the
events reach every WebSocket following the job at once; without one (the embedded set-up)
the consumers read new events from the database instead. Nothing is lost either way: a
consumer that sees a gap reads the missing events from the database.
"""

import logging

from portal.live import group_send

log = logging.getLogger(__name__)


def job_group(job_id: int) -> str:
    return f"job-{job_id}"


def publish(job_id: int, messages: list[dict]) -> None:
    if not messages:
        return
    try:
        if not group_send(job_group(job_id), {"type": "job.events", "events": messages}):
            return
    except Exception:
        # The events are stored; live pages catch up from the database.
        log.warning("could not publish events of job %s", job_id, exc_info=True)
    if any(m["type"] == "state" for m in messages):
        from nodes.live import pool_changed

        pool_changed()
