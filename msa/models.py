"""The MSA cache: every MSA the portal computed (from a server or a local search), one entry
per chain, or per ordered set of chains for a paired MSA, reused by later jobs of any project.
Entries are for staff; a user sees the MSAs of their own jobs as those jobs' artifacts."""

from django.db import models


class Source(models.TextChoices):
    SERVER = "server", "MSA server"
    LOCAL = "local", "local search"


class MsaEntry(models.Model):
    # SHA-256 of the normalised sequence(s), the source and, for a local search, the database
    # and its version (msa/services.py `cache_key`).
    key = models.CharField(max_length=64, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    database = models.CharField(max_length=200, blank=True)  # a local search's database
    database_version = models.CharField(max_length=200, blank=True)
    # The chain's sequence; for a paired MSA, the chains' sequences in order.
    sequences = models.JSONField()
    paired = models.BooleanField(default=False)
    storage_key = models.CharField(max_length=200)  # the A3M in the portal's storage
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()
    hits = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "MSA cache entry"
        verbose_name_plural = "MSA cache entries"
        indexes = [models.Index(fields=["last_used_at"])]

    def __str__(self):
        chains = "+".join(f"{len(s)} aa" for s in self.sequences)
        return f"{self.get_source_display()} MSA of {chains} ({self.key[:12]})"


class CacheCounter(models.Model):
    """Lookups of the cache since it began (a single row): what the hit rate is made of.
    Kept apart from the entries, so a clean-up does not rewrite the record."""

    hits = models.PositiveBigIntegerField(default=0)
    misses = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"{self.hits} hits, {self.misses} misses"


class MsaSearch(models.Model):
    """A search under way (or just failed) for one cache key: the claim that makes two jobs
    needing the same chain at once cause one search. A claim whose searcher stopped saying it
    is alive is stale and may be taken over; a failed one keeps its reason for the jobs that
    waited on it until it is stale too."""

    key = models.CharField(max_length=64, unique=True)
    search = models.CharField(max_length=32)  # the keys searched together in one request
    submitted = models.BooleanField(default=False)  # holds one of the server's places at once
    alive_at = models.DateTimeField()
    error = models.TextField(blank=True)

    def __str__(self):
        return f"search {self.search} of {self.key[:12]}"
