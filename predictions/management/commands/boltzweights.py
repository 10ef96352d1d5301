from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from nodes import probe


class Command(BaseCommand):
    help = (
        "Download Boltz-2's weights and molecules (about 6 GB) into this machine's boltz cache "
        "(PORTAL_BOLTZ_CACHE) with boltz's own download, then say whether it can predict. "
        "What is there already is not downloaded again. Run it on every node that predicts, "
        "and on the portal, which checks inputs with the molecules."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="only say what is there; download nothing"
        )

    def handle(self, *args, check, **options):
        cache = Path(settings.PORTAL_BOLTZ_CACHE).expanduser()
        checkpoint = (
            Path(settings.PORTAL_BOLTZ_CHECKPOINT).expanduser()
            if settings.PORTAL_BOLTZ_CHECKPOINT
            else None
        )
        if not check:
            try:
                from boltz.main import download_boltz2
            except ImportError as exc:
                raise CommandError(f"boltz is not installed here: {exc}") from None
            self.stdout.write(f"Boltz-2 weights and molecules into {cache} ...")
            cache.mkdir(parents=True, exist_ok=True)
            try:
                download_boltz2(cache)
            except Exception as exc:
                raise CommandError(f"The download failed: {exc}") from None
        info = probe.boltz_info(cache, checkpoint)
        if info["ready"]:
            self.stdout.write(
                f"Ready: boltz {info['version']}, checkpoint {info['checkpoint']}, molecules "
                f"in {cache / 'mols'}."
            )
            return
        missing = ", ".join(info["missing"]) or "boltz itself"
        raise CommandError(f"Not ready: missing {missing}.")
