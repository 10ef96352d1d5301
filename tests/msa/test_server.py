"""MSAs from a ColabFold-protocol server (our own, on loopback): through the cache, one search
per chain however many jobs want it at once, a bounded number of searches at the server,
RATELIMIT waited out, a server that is down failing after a bounded wait with nothing cached."""

import threading
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from msa.colabfold import MsaServer, MsaServerError
from msa.errors import MsaError
from msa.models import MsaEntry, MsaSearch
from msa.searches import msas as server_msas
from msa.searches import paired_blocks, server_paired_msa
from msa.selectors import cache_stats
from tests.conftest import free_port
from tests.msa.colabfold_server import ColabFoldServer

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN_A = "MKTAYIAKQRQISFVKSHFSRQ"
CHAIN_B = "GSHMSEQLTKCEVFRELKDLKGY"
CHAIN_C = "MADEEKLPPGWEKRMSRSSGRVYYFNHITNASQW"


@pytest.fixture
def colabfold(settings):
    settings.PORTAL_MSA_SERVER_POLL = 0.05
    server = ColabFoldServer(ratelimit=2, api_key="lab-key")
    yield server
    server.stop()


def client(colabfold, **extra):
    return MsaServer(url=colabfold.url, api_key="lab-key", poll=0.05, timeout=30, **extra)


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith(">")]


def read(entry: MsaEntry) -> str:
    with default_storage.open(entry.storage_key) as f:
        return f.read().decode()


def at_once(calls):
    """Run the calls in threads at the same moment; their results (or exceptions)."""
    results = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i, call):
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # the test looks at it
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_jobs_wanting_a_chain_at_once_cause_one_search_and_a_later_one_none(colabfold):
    lines = []
    server = client(colabfold)
    first, second = at_once([lambda: server_msas(server, [CHAIN_A], say=lines.append)] * 2)
    assert first[0].pk == second[0].pk
    # One search, after the server's two RATELIMIT answers were waited out.
    assert colabfold.searches == [{"mode": "env", "sequences": [CHAIN_A]}]
    assert colabfold.refused == 2
    assert any("it says RATELIMIT; trying again" in line for line in lines)
    assert any("waiting for another job's search" in line for line in lines)
    # The query first, the hits of both databases after it, the insertion kept in lower case.
    text = read(first[0])
    assert rows(text)[0] == CHAIN_A and len(rows(text)) == 1 + 4 + 1 + 4
    assert CHAIN_A[:3] + "gg" + CHAIN_A[3:] in rows(text)

    # A day later another job wants it: the cache answers, the server hears nothing.
    MsaEntry.objects.update(last_used_at=timezone.now() - timedelta(days=1))
    (again,) = server_msas(server, [CHAIN_A.lower()], say=lines.append)
    assert again.pk == first[0].pk and len(colabfold.searches) == 1
    assert again.last_used_at > timezone.now() - timedelta(minutes=1)
    stats = cache_stats()
    assert (stats["entries"], stats["by_source"]["server"]["entries"]) == (1, 1)
    assert stats["hits"] == 1 and not MsaSearch.objects.exists()


def test_chains_missing_from_the_cache_go_in_one_search_and_the_others_are_not_sent(colabfold):
    colabfold.ratelimit = 0
    server = client(colabfold)
    server_msas(server, [CHAIN_A])
    entries = server_msas(server, [CHAIN_B, CHAIN_A, CHAIN_C])
    assert [rows(read(e))[0] for e in entries] == [CHAIN_B, CHAIN_A, CHAIN_C]
    assert colabfold.searches[1] == {"mode": "env", "sequences": [CHAIN_B, CHAIN_C]}


def test_a_paired_complex_gets_rows_that_line_up_chain_by_chain(colabfold):
    colabfold.ratelimit = 0
    server = client(colabfold)
    entry = server_paired_msa(server, [CHAIN_A, CHAIN_B])
    assert colabfold.searches == [{"mode": "pairgreedy-env", "sequences": [CHAIN_A, CHAIN_B]}]
    chain_a, chain_b = (rows(block) for block in paired_blocks(read(entry)))
    assert chain_a[0] == CHAIN_A and chain_b[0] == CHAIN_B
    assert len(chain_a) == len(chain_b) == 1 + 4
    assert entry.paired and entry.sequences == [CHAIN_A, CHAIN_B]
    # The other order is another key, so another search.
    server_paired_msa(server, [CHAIN_B, CHAIN_A])
    assert len(colabfold.searches) == 2


def test_searches_at_the_server_are_bounded_in_number(colabfold, settings):
    colabfold.ratelimit = 0
    settings.PORTAL_MSA_SERVER_AT_ONCE = 1
    server = client(colabfold)
    results = at_once([lambda s=s: server_msas(server, [s]) for s in (CHAIN_A, CHAIN_B, CHAIN_C)])
    assert all(isinstance(r, list) for r in results), results
    assert len(colabfold.searches) == 3 and colabfold.most_at_once == 1


def test_a_server_that_is_down_fails_after_a_bounded_wait_and_caches_nothing(settings):
    settings.PORTAL_MSA_SERVER_POLL = 0.05
    lines = []
    down = MsaServer(url=f"http://127.0.0.1:{free_port()}", poll=0.05, timeout=1)
    with pytest.raises(
        MsaServerError, match="gave no MSA within 1 s: the server cannot be reached"
    ):
        server_msas(down, [CHAIN_A], say=lines.append)
    assert not MsaEntry.objects.exists()
    assert any("trying again" in line for line in lines)
    # A job that waited on that search fails with its reason, without a search of its own.
    with pytest.raises(MsaError, match="gave no MSA"):
        server_msas(down, [CHAIN_A])


def test_wrong_credentials_are_a_clear_failure(colabfold):
    wrong = MsaServer(url=colabfold.url, api_key="not-it", poll=0.05, timeout=5)
    with pytest.raises(MsaServerError, match="refused the portal's credentials"):
        server_msas(wrong, [CHAIN_A])
    assert not MsaEntry.objects.exists() and colabfold.searches == []
