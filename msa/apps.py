from django.apps import AppConfig


class MsaConfig(AppConfig):
    name = "msa"
    verbose_name = "MSA cache"

    def ready(self):
        from django.conf import settings

        from jobs import periodic
        from jobs.kinds import register
        from msa.kinds import MsaKind
        from msa.services import cache_cleanup

        register(MsaKind())
        periodic.register(
            "MSA cache clean-up",
            cache_cleanup,
            every=lambda: settings.PORTAL_MSA_CLEANUP_INTERVAL,
        )
