"""MSAs from the configured server or this machine's database, through the cache, each
computed once.

`msas` gives each chain's unpaired MSA from a searcher (an `MsaServer`, or a `LocalDatabase`
whose name and version are part of the key) and `server_paired_msa` the paired MSA of an
ordered set of chains from the server. A key found in the cache costs nothing. The keys
missing are claimed (an `MsaSearch` row each): keys this caller claimed are searched together
in one request, and a key another caller is searching is waited for (single flight: two jobs
needing the same chain at once cause one search). A search at the server holds one of its
places, at most PORTAL_MSA_SERVER_AT_ONCE across the pool, while it is submitted. A searcher
says it is alive every few seconds; a claim silent for STALE seconds is taken over. A failed
search stores nothing and leaves its reason on its claims, so the jobs waiting on it fail with
it.
"""

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from msa.colabfold import MsaServer
from msa.errors import MsaError, MsaStopped, pause
from msa.models import CacheCounter, MsaEntry, MsaSearch, Source
from msa.services import cache_key, cache_lookup, cache_store, normalise

STALE = 60.0  # seconds a claim may go without its searcher saying it is alive
PAIRED_SEPARATOR = "\x00"  # between the chains' blocks of a stored paired MSA

Say = Callable[[str], None]


def _key(searcher, group: list[str]) -> str:
    return cache_key(group, searcher.source, database=searcher.database, version=searcher.version)


def msas(searcher, sequences: list[str], *, say: Say = print, stop=None) -> list[MsaEntry]:
    """Each sequence's unpaired MSA from the searcher (cached), in order. Setting `stop` (a
    threading.Event) ends the wait or the search (MsaStopped) at its next pause."""
    groups = [[normalise(s)] for s in sequences]
    found = _resolve(searcher, groups, paired=False, say=say, stop=stop)
    return [found[_key(searcher, group)] for group in groups]


def server_paired_msa(
    server: MsaServer, sequences: list[str], *, say: Say = print, stop=None
) -> MsaEntry:
    """The paired MSA of distinct chains, in this order, from the server (cached)."""
    group = [normalise(s) for s in sequences]
    return _resolve(server, [group], paired=True, say=say, stop=stop)[_key(server, group)]


def paired_blocks(text: str) -> list[str]:
    """A stored paired MSA's A3M per chain, in the order of its key's chains."""
    return text.split(PAIRED_SEPARATOR)


def _label(group: list[str]) -> str:
    return " + ".join(f"{s[:10]}… ({len(s)} aa)" if len(s) > 10 else s for s in group)


def _resolve(searcher, groups, *, paired: bool, say: Say, stop) -> dict[str, MsaEntry]:
    wanted = {_key(searcher, group): group for group in groups}
    found = {}
    for key in wanted:
        entry = cache_lookup(key)
        if entry is not None:
            found[key] = entry
            say(f"MSA of {_label(wanted[key])}: from the cache")
    waited_since = time.monotonic()
    while True:
        mine = []
        for key in wanted:
            if key not in found and _claim(key):
                # Stored by another search since the first look: nothing to do.
                entry = MsaEntry.objects.filter(key=key).first()
                if entry is None:
                    mine.append(key)
                else:
                    MsaSearch.objects.filter(key=key).delete()
        if mine:
            _search(searcher, {key: wanted[key] for key in mine}, paired=paired, say=say, stop=stop)
        for key in wanted:
            entry = found.get(key) or MsaEntry.objects.filter(key=key).first()
            if entry is not None:
                found[key] = entry
                continue
            claim = MsaSearch.objects.filter(key=key).first()
            if claim is not None and claim.error:
                raise MsaError(claim.error)
        if len(found) == len(wanted):
            return found
        if not mine:
            if time.monotonic() - waited_since > searcher.timeout + STALE:
                raise MsaError("Another job's search of this MSA did not end in time.")
            say(f"MSA: waiting for another job's search of {len(wanted) - len(found)} chain(s)")
            pause(searcher.poll, stop)


def _claim(key: str) -> bool:
    """Claim a key for a search by this caller; False if another holds a live claim."""
    now = timezone.now()
    MsaSearch.objects.filter(key=key, alive_at__lt=now - timedelta(seconds=STALE)).delete()
    try:
        with transaction.atomic():
            MsaSearch.objects.create(key=key, search="", alive_at=now)
    except IntegrityError:
        return False
    return True


def _search(searcher, groups: dict[str, list[str]], *, paired: bool, say: Say, stop) -> None:
    """One search of the claimed keys; store what it gives, or leave its reason."""
    search = uuid.uuid4().hex
    keys = list(groups)
    MsaSearch.objects.filter(key__in=keys).update(search=search)
    try:
        with _alive(keys):
            if searcher.source == Source.SERVER:
                _take_a_place(keys, searcher.timeout, say, stop)
            if paired:
                (group,) = groups.values()
                say(f"MSA of {_label(group)}: paired search at {searcher.where}")
                blocks = searcher.search(group, paired=True, say=say, stop=stop)
                results = {keys[0]: PAIRED_SEPARATOR.join(blocks)}
            else:
                sequences = [group[0] for group in groups.values()]
                for sequence in sequences:
                    say(f"MSA of {_label([sequence])}: search at {searcher.where}")
                results = dict(
                    zip(
                        keys,
                        searcher.search(sequences, paired=False, say=say, stop=stop),
                        strict=True,
                    )
                )
        for key, text in results.items():
            cache_store(
                key=key,
                source=searcher.source,
                sequences=groups[key],
                a3m=text.encode(),
                database=searcher.database,
                version=searcher.version,
            )
        MsaSearch.objects.filter(key__in=keys).delete()
    except MsaStopped:
        MsaSearch.objects.filter(key__in=keys).delete()  # another job may take it over
        raise
    except MsaError as exc:
        MsaSearch.objects.filter(key__in=keys).update(error=str(exc), submitted=False)
        raise
    except BaseException:
        MsaSearch.objects.filter(key__in=keys).delete()
        raise


def _take_a_place(keys: list[str], timeout: float, say: Say, stop) -> None:
    """Wait for one of the server's places (PORTAL_MSA_SERVER_AT_ONCE across the pool), at
    most `timeout` seconds."""
    CacheCounter.objects.get_or_create(pk=1)
    told = False
    deadline = time.monotonic() + timeout
    while True:
        with transaction.atomic():
            # The counter's row serialises the count-and-take of every searcher.
            CacheCounter.objects.select_for_update().get(pk=1)
            live = timezone.now() - timedelta(seconds=STALE)
            busy = (
                MsaSearch.objects.filter(submitted=True, alive_at__gte=live)
                .values("search")
                .distinct()
                .count()
            )
            if busy < settings.PORTAL_MSA_SERVER_AT_ONCE:
                MsaSearch.objects.filter(key__in=keys).update(submitted=True)
                return
        if time.monotonic() > deadline:
            raise MsaError(
                f"No place at the MSA server within {timeout:.0f} s ({busy} searches under way)."
            )
        if not told:
            say(f"MSA: waiting for a place at the server ({busy} searches under way)")
            told = True
        pause(settings.PORTAL_MSA_SERVER_POLL, stop)


@contextlib.contextmanager
def _alive(keys: list[str]):
    """Say the claims are alive every few seconds while the search runs."""
    stop = threading.Event()

    def beat():
        try:
            while not stop.wait(STALE / 6):
                MsaSearch.objects.filter(key__in=keys).update(alive_at=timezone.now())
        finally:
            connection.close()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
