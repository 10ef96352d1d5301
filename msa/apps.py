from django.apps import AppConfig


class MsaConfig(AppConfig):
    name = "msa"
    verbose_name = "MSA cache"

    def ready(self):
        from django.conf import settings

        from jobs import periodic
        from jobs.kinds import register
        from msa.kinds import MsaKind
        from msa.metrics import MsaCacheCollector
        from msa.services import cache_cleanup
        from portal import metrics

        register(MsaKind())
        metrics.register(MsaCacheCollector())
        periodic.register(
            "MSA cache clean-up",
            cache_cleanup,
            every=lambda: settings.PORTAL_MSA_CLEANUP_INTERVAL,
        )
