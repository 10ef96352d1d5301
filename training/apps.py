from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Sequence models"

    def ready(self):
        from jobs.kinds import register
        from training.kinds import ScoreKind, TrainKind

        register(TrainKind())
        register(ScoreKind())
