"""State changes of nodes: creation, heartbeats, enable / disable / drain."""

import hashlib
import logging
import re
import secrets

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import IntegrityError, transaction
from django.utils import timezone

from nodes.live import pool_changed
from nodes.models import NAME_PATTERN, Node
from nodes.signals import node_available
from portal.errors import PortalError

log = logging.getLogger(__name__)
TOKEN_PREFIX = "spn_"  # noqa: S105  (a prefix, not a secret)


def hash_node_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def node_create(*, name: str, queue: str = "", cpu_slots: int = 1) -> tuple[Node, str]:
    """Register a node; returns it and its token, which is stored only as a hash."""
    if not re.match(NAME_PATTERN, name or ""):
        raise PortalError(
            "A node name is lower-case letters, digits, '-' and '_' (at most 63).",
            code="node_name_invalid",
        )
    if cpu_slots < 0 or cpu_slots > 256:
        raise PortalError("CPU slots must be between 0 and 256.", code="node_slots_invalid")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        node = Node.objects.create(
            name=name,
            queue=queue or f"node-{name}",
            cpu_slots=cpu_slots,
            token_hash=hash_node_token(token),
            token_prefix=token[:12],
        )
    except IntegrityError:
        raise PortalError(
            f"A node named '{name}' (or with that queue) exists already.", code="node_exists"
        ) from None
    return node, token


def node_rotate_token(*, node: Node) -> str:
    """Give a node a new token; the old one stops working."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    Node.objects.filter(pk=node.pk).update(
        token_hash=hash_node_token(token), token_prefix=token[:12]
    )
    return token


def node_for_token(token: str) -> Node | None:
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    return Node.objects.filter(token_hash=hash_node_token(token)).first()


def node_heartbeat(*, node: Node, report: dict, address: str | None) -> Node:
    """Record what a node's agent reports; a node back from offline takes work at once."""
    with transaction.atomic():
        was_online = Node.objects.select_for_update().get(pk=node.pk).is_online()
        fields = {
            "gpus": report.get("gpus", []),
            "lanes_per_gpu": report.get("lanes_per_gpu", 1),
            "cpu_percent": report.get("cpu_percent"),
            "memory_total": report.get("memory_total"),
            "memory_used": report.get("memory_used"),
            "engines": report.get("engines", {}),
            "warm_engines": report.get("warm_engines", []),
            "hostname": report.get("hostname", ""),
            "boot_id": report.get("boot_id", ""),
            "address": address,
            "last_heartbeat_at": timezone.now(),
        }
        Node.objects.filter(pk=node.pk).update(**fields)
        node.refresh_from_db()
    if not was_online:
        log.info("node %s is online (%d GPUs)", node.name, len(node.gpus))
        transaction.on_commit(lambda: node_available.send(sender=Node, node=node))
    transaction.on_commit(pool_changed)
    return node


def node_engines_changed(*, node: Node, warm_engines: list[dict]) -> None:
    """Its node's runner stopped some of its resident engines (to make room for a job): the
    pool shows it now, not at the next heartbeat."""
    Node.objects.filter(pk=node.pk).update(warm_engines=warm_engines)
    transaction.on_commit(pool_changed)


def _set(node: Node, *, by=None, verb: str, **fields) -> Node:
    """Change a node's service fields; an operator's change goes into the admin's history of
    the node (whether made in the admin, on the pool page or through the API)."""
    Node.objects.filter(pk=node.pk).update(**fields)
    node.refresh_from_db()
    log.info("node %s %s by %s", node.name, verb, by or "the system")
    if by is not None:
        LogEntry.objects.log_actions(
            user_id=by.pk,
            queryset=[node],
            action_flag=CHANGE,
            change_message=f"{verb} the node",
            single_object=True,
        )
    transaction.on_commit(pool_changed)
    if node.enabled and not node.draining:
        transaction.on_commit(lambda: node_available.send(sender=Node, node=node))
    return node


def node_enable(*, node: Node, by=None) -> Node:
    """Take the node back into service: it receives jobs again."""
    return _set(node, by=by, verb="enabled", enabled=True, draining=False)


def node_disable(*, node: Node, by=None) -> Node:
    """Take the node out of service: no new job goes to it, and the jobs running there go back
    to the queue (their runners see it within a second and stop them; the scheduler's sweep
    re-queues any whose runner does not answer), to run elsewhere."""
    return _set(node, by=by, verb="disabled", enabled=False)


def node_drain(*, node: Node, by=None) -> Node:
    """No new job goes to the node; jobs running there finish, then it stands idle."""
    return _set(node, by=by, verb="drained", draining=True)
