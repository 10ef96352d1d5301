"""Telling the node pool page that something changed (a heartbeat, a job starting or ending)."""

import logging

from portal.live import group_send

log = logging.getLogger(__name__)
POOL_GROUP = "node-pool"


def pool_changed() -> None:
    try:
        group_send(POOL_GROUP, {"type": "pool.changed"})
    except Exception:
        log.warning("could not tell the node pool page", exc_info=True)
