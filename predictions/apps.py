from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "predictions"
    verbose_name = "Structure predictions"

    def ready(self):
        from jobs.kinds import register
        from predictions.af3 import Af3Kind
        from predictions.affinity import AffinityKind
        from predictions.kinds import PredictKind

        register(PredictKind())
        register(AffinityKind())
        register(Af3Kind())
