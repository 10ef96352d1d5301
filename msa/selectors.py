"""Reads of the MSA cache."""

from django.db.models import Count, Max, Min, Sum

from msa.models import CacheCounter, MsaEntry


def cache_stats() -> dict:
    """Entries, bytes, oldest and newest, hits and misses since the cache began (hit rate),
    and entries and bytes by source."""
    totals = MsaEntry.objects.aggregate(
        entries=Count("pk"), bytes=Sum("size"), oldest=Min("created_at"), newest=Max("created_at")
    )
    counter = CacheCounter.objects.filter(pk=1).first()
    hits, misses = (counter.hits, counter.misses) if counter else (0, 0)
    by_source = {
        row["source"]: {"entries": row["entries"], "bytes": row["bytes"] or 0}
        for row in MsaEntry.objects.values("source")
        .annotate(entries=Count("pk"), bytes=Sum("size"))
        .order_by("source")
    }
    return {
        "entries": totals["entries"],
        "bytes": totals["bytes"] or 0,
        "oldest": totals["oldest"],
        "newest": totals["newest"],
        "hits": hits,
        "misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "by_source": by_source,
    }
