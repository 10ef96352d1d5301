from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat
from tqdm import tqdm

from msa.models import MsaEntry
from msa.selectors import cache_stats
from msa.services import cache_clear, cleanup_plan, remove_entries


class Command(BaseCommand):
    help = (
        "The MSA cache: `stats` prints its figures; `cleanup` removes the entries not used for "
        "--days (PORTAL_MSA_CACHE_MAX_AGE_DAYS, 30), then the least recently used until the "
        "rest fit in --budget bytes (PORTAL_MSA_CACHE_BUDGET, 20 GB); `clear` removes every "
        "entry (asks first unless --yes). Files go with their entries; a progress bar shows "
        "the removal."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["stats", "cleanup", "clear"])
        parser.add_argument("--days", type=int, help="cleanup: the age limit, in days unused")
        parser.add_argument("--budget", type=int, help="cleanup: the size limit, in bytes")
        parser.add_argument("--yes", action="store_true", help="clear: do not ask")

    def handle(self, *args, action, days, budget, yes, **options):
        if days is not None and days < 0 or budget is not None and budget < 0:
            raise CommandError("--days and --budget are 0 or more.")
        if action == "cleanup":
            plan = cleanup_plan(max_age_days=days, budget=budget)
            self._removing(len(plan), lambda bar: remove_entries(plan, bar.update))
        elif action == "clear":
            count = MsaEntry.objects.count()
            if not yes and input(f"Remove all {count} MSAs of the cache? [y/N] ").lower() != "y":
                raise CommandError("Nothing removed.")
            self._removing(count, lambda bar: cache_clear(progress=bar.update))
        self._stats()

    def _removing(self, total, remove):
        with tqdm(total=total, unit="entry", desc="removing", file=self.stderr) as bar:
            result = remove(bar)
        self.stdout.write(
            f"removed {result['removed']} entries, {filesizeformat(result['freed'])} freed"
        )

    def _stats(self):
        stats = cache_stats()
        rate = "—" if stats["hit_rate"] is None else f"{stats['hit_rate']:.0%}"
        self.stdout.write(
            f"entries {stats['entries']}, {filesizeformat(stats['bytes'])}; oldest "
            f"{stats['oldest'] or '—'}, newest {stats['newest'] or '—'}; hits {stats['hits']}, "
            f"misses {stats['misses']}, hit rate {rate}"
        )
        for source, figures in stats["by_source"].items():
            self.stdout.write(
                f"  {source}: {figures['entries']} entries, {filesizeformat(figures['bytes'])}"
            )
        self.stdout.write(
            f"clean-up keeps entries used in the last {settings.PORTAL_MSA_CACHE_MAX_AGE_DAYS} "
            f"days, within {filesizeformat(settings.PORTAL_MSA_CACHE_BUDGET)}"
        )
