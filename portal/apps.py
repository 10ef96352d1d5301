from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Science portal"

    def ready(self):
        # Registers the `<id:...>` URL converter before any URL configuration is read.
        from portal import ids  # noqa: F401
