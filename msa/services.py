"""State changes of the MSA cache: look up, store, clean up, clear.

An entry is stored file first, row second: the A3M is written whole to storage, then the row
that makes it an entry is created, so a search that fails half-way leaves no entry (a file
left by a crash is rewritten by the next store of the same key, which checks its size).
Removing goes the other way, row first, so no entry ever names a missing file.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F
from django.utils import timezone

from msa.models import CacheCounter, MsaEntry

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # called with the number of entries just removed
REMOVE_CHUNK = 500


def normalise(sequence: str) -> str:
    """A chain's sequence as the cache keys it: no whitespace, upper case."""
    return "".join(sequence.split()).upper()


def cache_key(
    sequences: Iterable[str], source: str, *, database: str = "", version: str = ""
) -> str:
    """The key of an MSA: SHA-256 of the normalised sequence (or, paired, the chains' in
    order), the source and, for a local search, the database and its version."""
    described = {
        "sequences": [normalise(s) for s in sequences],
        "source": source,
        "database": database,
        "version": version,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _count(*, hit: bool) -> None:
    counter, _ = CacheCounter.objects.get_or_create(pk=1)
    field = "hits" if hit else "misses"
    CacheCounter.objects.filter(pk=counter.pk).update(**{field: F(field) + 1})


def cache_lookup(key: str) -> MsaEntry | None:
    """The entry of a key, marked used (a hit), or None (a miss)."""
    entry = MsaEntry.objects.filter(key=key).first()
    _count(hit=entry is not None)
    if entry is not None:
        entry.last_used_at = timezone.now()
        MsaEntry.objects.filter(pk=entry.pk).update(
            hits=F("hits") + 1, last_used_at=entry.last_used_at
        )
        entry.hits += 1
    return entry


def cache_store(
    *,
    key: str,
    source: str,
    sequences: list[str],
    a3m: bytes,
    database: str = "",
    version: str = "",
) -> MsaEntry:
    """Store a computed MSA (the A3M text) under its key; the entry already there if two
    searches of the same key raced."""
    storage_key = f"msa/{key}.a3m"
    if default_storage.exists(storage_key) and default_storage.size(storage_key) != len(a3m):
        default_storage.delete(storage_key)  # left half-written by a crash
    if not default_storage.exists(storage_key):
        stored = default_storage.save(storage_key, ContentFile(a3m))
        if stored != storage_key:  # another writer got there first, with the same bytes
            default_storage.delete(stored)
    entry, _ = MsaEntry.objects.get_or_create(
        key=key,
        defaults={
            "source": source,
            "database": database,
            "database_version": version,
            "sequences": [normalise(s) for s in sequences],
            "paired": len(sequences) > 1,
            "storage_key": storage_key,
            "size": len(a3m),
            "last_used_at": timezone.now(),
        },
    )
    return entry


def remove_entries(pks: list[int], progress: Progress | None = None) -> dict:
    """Remove the entries of these ids, a chunk of rows then their files at a time (an entry
    removed meanwhile is skipped): {removed, freed (bytes)}."""
    removed = freed = 0
    for start in range(0, len(pks), REMOVE_CHUNK):
        rows = list(
            MsaEntry.objects.filter(pk__in=pks[start : start + REMOVE_CHUNK]).values_list(
                "pk", "storage_key", "size"
            )
        )
        MsaEntry.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
        for _, storage_key, _ in rows:
            # Another entry never shares a file (the name is the key), so the file goes too.
            default_storage.delete(storage_key)
        removed += len(rows)
        freed += sum(size for _, _, size in rows)
        if progress:
            progress(len(rows))
    return {"removed": removed, "freed": freed}


def cleanup_plan(*, max_age_days: int | None = None, budget: int | None = None) -> list[int]:
    """The ids of what a clean-up removes, in order: the entries not used for `max_age_days`,
    then the least recently used until the rest fit in `budget` bytes (settings' defaults)."""
    if max_age_days is None:
        max_age_days = settings.PORTAL_MSA_CACHE_MAX_AGE_DAYS
    if budget is None:
        budget = settings.PORTAL_MSA_CACHE_BUDGET
    cutoff = timezone.now() - timedelta(days=max_age_days)
    rows = MsaEntry.objects.order_by("last_used_at", "pk").values_list("pk", "size", "last_used_at")
    doomed, kept, total = [], [], 0
    for pk, size, last_used in rows:
        if last_used < cutoff:
            doomed.append(pk)
        else:
            kept.append((pk, size))
            total += size
    for pk, size in kept:  # least recently used first
        if total <= budget:
            break
        doomed.append(pk)
        total -= size
    return doomed


def cache_cleanup(
    *,
    max_age_days: int | None = None,
    budget: int | None = None,
    progress: Progress | None = None,
) -> dict:
    """Remove what `cleanup_plan` names, with their files: {removed, freed (bytes)}."""
    result = remove_entries(cleanup_plan(max_age_days=max_age_days, budget=budget), progress)
    log.info("MSA cache clean-up: %(removed)s entries, %(freed)s bytes freed", result)
    return result


def cache_clear(*, progress: Progress | None = None) -> dict:
    """Remove every entry and its file: {removed, freed (bytes)}."""
    result = remove_entries(list(MsaEntry.objects.values_list("pk", flat=True)), progress)
    log.info("MSA cache cleared: %(removed)s entries, %(freed)s bytes freed", result)
    return result
