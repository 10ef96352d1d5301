import json as json_module

from django.core.management.base import BaseCommand

from nodes.probe import inspect


class Command(BaseCommand):
    help = (
        "Check this host for the portal's jobs without the portal: the NVIDIA driver and GPUs, "
        "torch and whether CUDA computes, boltz and its weights (PORTAL_BOLTZ_CACHE), the MSA "
        "sources (PORTAL_MSA_LOCAL_DB, PORTAL_MSA_SERVER_URL); what a `check` job reports. "
        "Exits 1 when this host could run no job that needs a model (no torch), or, with "
        "--predict, when it cannot predict (no boltz weights)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--predict", action="store_true", help="fail unless this host can predict"
        )

    def handle(self, *args, json: bool, predict: bool, **options):
        result = inspect((lambda line: None) if json else self.stdout.write)
        if json:
            self.stdout.write(_dumps(result))
        if not result["torch"]["version"]:
            self.stderr.write("This host has no torch: it can run no model.")
            raise SystemExit(1)
        if predict and not result["boltz"].get("weights"):
            self.stderr.write("This host cannot predict: run `manage.py boltzweights`.")
            raise SystemExit(1)


def _dumps(value) -> str:
    return json_module.dumps(value, indent=2, default=str)
