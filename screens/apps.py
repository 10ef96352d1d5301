from django.apps import AppConfig


class ScreensConfig(AppConfig):
    name = "screens"
    verbose_name = "Virtual screens"

    def ready(self):
        from django.conf import settings

        from jobs import periodic
        from jobs.kinds import register
        from screens.kinds import ScreenKind
        from screens.screening import advance_screens

        register(ScreenKind())
        # Screens move on from the scheduler, at its pace.
        periodic.register(
            "virtual screens", advance_screens, every=lambda: settings.PORTAL_SCHEDULER_INTERVAL
        )
