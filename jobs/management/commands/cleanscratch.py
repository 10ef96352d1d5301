from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from jobs.runner import scratch_cleanup


class Command(BaseCommand):
    help = (
        "Remove the scratch directories of ended runs on this host (under "
        "PORTAL_WORKDIR/scratch/, every node name's) but the newest --keep of each node "
        "(PORTAL_SCRATCH_KEEP, 3), and say what it freed. Runs still going are left alone; "
        "the runner does the same after every job."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep", type=int, default=None, help="ended runs kept per node")

    def handle(self, *args, keep, **options):
        keep = settings.PORTAL_SCRATCH_KEEP if keep is None else keep
        if keep < 0:
            raise CommandError("--keep is 0 or more.")
        root = settings.WORKDIR / "scratch"
        removed = freed = 0
        for node in sorted(root.iterdir()) if root.is_dir() else []:
            if node.is_dir():
                count, size = scratch_cleanup(node, keep)
                removed, freed = removed + count, freed + size
        self.stdout.write(
            f"Removed {removed} scratch director{'y' if removed == 1 else 'ies'} of ended runs, "
            f"{filesizeformat(freed)} freed ({freed} bytes)."
        )
