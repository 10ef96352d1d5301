from django.apps import AppConfig


class DesignsConfig(AppConfig):
    name = "designs"
    verbose_name = "Design campaigns"

    def ready(self):
        from django.conf import settings

        from designs.campaigns import advance_campaigns
        from designs.kinds import DesignKind
        from jobs import periodic
        from jobs.kinds import register

        register(DesignKind())
        # Campaigns move on from the scheduler, at its pace.
        periodic.register(
            "design campaigns",
            advance_campaigns,
            every=lambda: settings.PORTAL_SCHEDULER_INTERVAL,
        )
