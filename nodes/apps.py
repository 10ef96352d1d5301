from django.apps import AppConfig


class NodesConfig(AppConfig):
    name = "nodes"
    verbose_name = "GPU nodes"

    def ready(self):
        from nodes.metrics import NodesCollector
        from portal import metrics

        metrics.register(NodesCollector())
