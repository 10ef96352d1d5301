from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        from jobs.metrics import JobsCollector
        from jobs.placement import place_queued_jobs
        from nodes.signals import node_available
        from portal import metrics

        metrics.register(JobsCollector())

        def place_on_available_node(sender, node, **kwargs):
            place_queued_jobs()

        # A node that comes online, is enabled or stops draining takes waiting work at once.
        node_available.connect(place_on_available_node, weak=False, dispatch_uid="jobs.place")
