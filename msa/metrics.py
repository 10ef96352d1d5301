"""The MSA cache's series at `/metrics` (portal/metrics.py), from its figures in the database
at each scrape (msa/selectors.py: `cache_stats`)."""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from msa.selectors import cache_stats


class MsaCacheCollector(Collector):
    def collect(self):
        stats = cache_stats()
        yield GaugeMetricFamily("portal_msa_cache_entries", "MSAs in the cache", stats["entries"])
        yield GaugeMetricFamily(
            "portal_msa_cache_bytes", "Size of the MSAs in the cache (bytes)", stats["bytes"]
        )
        # Hits and misses since the cache began: their rate gives the recent hit ratio.
        yield CounterMetricFamily(
            "portal_msa_cache_hits", "Lookups the cache answered", value=stats["hits"]
        )
        yield CounterMetricFamily(
            "portal_msa_cache_misses", "Lookups that needed a search", value=stats["misses"]
        )
        if stats["hit_rate"] is not None:
            yield GaugeMetricFamily(
                "portal_msa_cache_hit_ratio",
                "Hits over lookups since the cache began (absent before the first lookup)",
                stats["hit_rate"],
            )
