"""The nodes' series at `/metrics` (portal/metrics.py), read from the database at each scrape:
nodes by status, and each online node's GPUs and warm engines as its last heartbeat reported
them. An offline node's last report is stale, so its GPUs and engines are left out rather than
shown frozen."""

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from nodes.models import Node, Status
from nodes.selectors import with_running_count

GPU_LABELS = ["node", "gpu", "model"]
# Series name, help, and the heartbeat's field for each GPU figure.
GPU_SERIES = [
    ("portal_gpu_utilization_percent", "GPU utilisation (percent)", "utilization"),
    ("portal_gpu_memory_used_bytes", "GPU memory in use (bytes)", "memory_used"),
    ("portal_gpu_memory_total_bytes", "GPU memory (bytes)", "memory_total"),
    ("portal_gpu_temperature_celsius", "GPU temperature (degrees Celsius)", "temperature"),
]


class NodesCollector(Collector):
    def collect(self):
        nodes = list(
            with_running_count(
                Node.objects.only(
                    "name", "enabled", "draining", "gpus", "warm_engines", "last_heartbeat_at"
                )
            ).order_by("name")
        )
        by_status = GaugeMetricFamily("portal_nodes", "Nodes by status", labels=["status"])
        counts = dict.fromkeys(Status.values, 0)
        for node in nodes:
            counts[node.status(busy=node.running_count > 0)] += 1
        for status, n in counts.items():
            by_status.add_metric([status], n)
        yield by_status

        online = [node for node in nodes if node.is_online()]
        for name, documentation, field in GPU_SERIES:
            family = GaugeMetricFamily(name, documentation, labels=GPU_LABELS)
            for node in online:
                for i, gpu in enumerate(node.gpus or []):
                    # A figure the driver would not give (a fake GPU's temperature) is absent.
                    if gpu.get(field) is not None:
                        labels = [node.name, str(gpu.get("index", i)), gpu.get("name") or ""]
                        family.add_metric(labels, gpu[field])
            yield family

        warm = GaugeMetricFamily(
            "portal_warm_engines", "Resident engines running on each online node", labels=["node"]
        )
        for node in online:
            warm.add_metric([node.name], len(node.warm_engines or []))
        yield warm
