from django.apps import AppConfig


class MsaConfig(AppConfig):
    name = "msa"
    verbose_name = "MSA cache"
