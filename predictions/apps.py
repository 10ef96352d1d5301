from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"
    verbose_name = "Structure predictions"

    def ready(self):
        from jobs.kinds import register
        from predictions.affinity import AffinityKind
        from predictions.kinds import PredictKind

        register(PredictKind())
        register(AffinityKind())
