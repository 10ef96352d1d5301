"""Reading nodes: which are online and take work, and what runs on them.

Jobs point at their node as `jobs`; a job holds its slot while it runs. The nodes app does not
import the jobs app, so that state is named here by its value.
"""

from django.db.models import Count, Prefetch, Q

from nodes.models import Node

RUNNING = "running"


def nodes_online():
    """Nodes heard from within PORTAL_NODE_OFFLINE_AFTER seconds (see `Node.is_online`)."""
    return Node.objects.filter(last_heartbeat_at__gt=Node.online_since())


def nodes_available() -> list[Node]:
    """Online nodes that take new jobs: enabled and not draining, by name."""
    return list(nodes_online().filter(enabled=True, draining=False).order_by("name"))


def running_jobs(node: Node):
    """The jobs running on a node, oldest first."""
    return node.jobs.filter(state=RUNNING).order_by("started_at")


def with_running_count(nodes):
    """`nodes`, each annotated with `running_count`: how many jobs run there."""
    return nodes.annotate(running_count=Count("jobs", filter=Q(jobs__state=RUNNING)))


def with_running_jobs(nodes, fields=("id", "name", "kind", "gpu", "node_id")):
    """`nodes`, each with `running_count` and its running jobs as `running`."""
    jobs = Node._meta.get_field("jobs").related_model.objects.filter(state=RUNNING)
    return with_running_count(nodes).prefetch_related(
        Prefetch("jobs", queryset=jobs.only(*fields), to_attr="running")
    )
