from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self):
        import threading

        from jobs.kinds import warm_up
        from jobs.metrics import JobsCollector
        from jobs.placement import place_queued_jobs
        from nodes.signals import node_available
        from portal import metrics
        from portal.signals import server_starting

        metrics.register(JobsCollector())

        def place_on_available_node(sender, node, **kwargs):
            place_queued_jobs()

        # A node that comes online, is enabled or stops draining takes waiting work at once.
        node_available.connect(place_on_available_node, weak=False, dispatch_uid="jobs.place")

        def warm_up_kinds(sender, **kwargs):
            threading.Thread(target=warm_up, name="warm-up", daemon=True).start()

        # The web server's first submission of a kind does not wait for its parser to load.
        server_starting.connect(warm_up_kinds, weak=False, dispatch_uid="jobs.warm_up")
