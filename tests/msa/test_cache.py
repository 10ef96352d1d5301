"""The MSA cache's operations: stats, clean-up by age then by budget (least recently used
first), clear; through the API, `manage.py msacache`, the admin and the staff page, each
removing the entries' stored files with them. And the scheduler's daily clean-up."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from msa.models import MsaEntry
from msa.services import cache_key, cache_lookup, cache_store
from tests.conftest import ManagedProcess, wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.database]

NOW = timezone.now()


def a3m(sequence: str, rows: int) -> bytes:
    return (
        f">query\n{sequence}\n" + "".join(f">hit{i}\n{sequence}\n" for i in range(rows))
    ).encode()


def fill_cache():
    """Four entries of known sizes and last uses: `old` unused for 40 days, then `b`, `c`, `d`
    used 3.5, 2.5 and 1.5 days ago (never on a whole day's boundary). Returns {name: entry}."""
    entries = {}
    for name, sequence, days, rows in [
        ("old", "MKTAYIAKQR", 40, 9),
        ("b", "MKVLAAGIVG", 3.5, 4),
        ("c", "GSHMSEQLTK", 2.5, 4),
        ("d", "MADEEKLPPG", 1.5, 4),
    ]:
        source = "local" if name == "c" else "server"
        entry = cache_store(
            key=cache_key([sequence], source),
            source=source,
            sequences=[sequence],
            a3m=a3m(sequence, rows),
        )
        MsaEntry.objects.filter(pk=entry.pk).update(
            last_used_at=NOW - timedelta(days=days), created_at=NOW - timedelta(days=days)
        )
        entries[name] = entry
    return entries


def present(entries) -> set[str]:
    """Which of the entries are still there, row and file."""
    kept = set(MsaEntry.objects.values_list("pk", flat=True))
    names = set()
    for name, entry in entries.items():
        on_disk = default_storage.exists(entry.storage_key)
        assert (entry.pk in kept) == on_disk, f"{name}: row and file disagree"
        if on_disk:
            names.add(name)
    return names


def test_a_lookup_counts_a_hit_or_a_miss_and_stats_say_so(make_user, api):
    staff = make_user("operator", is_staff=True)
    key = cache_key(["mktayiakqr "], "server")
    assert key == cache_key(["MKTAYIAKQR"], "server") != cache_key(["MKTAYIAKQR"], "local")
    assert cache_lookup(key) is None
    cache_store(key=key, source="server", sequences=["MKTAYIAKQR"], a3m=a3m("MKTAYIAKQR", 1))
    assert cache_lookup(key).hits == 1
    assert cache_lookup(key).hits == 2
    stats = api(staff).get("/api/v1/msa/cache/stats/").json()
    assert stats["entries"] == 1 and stats["bytes"] == len(a3m("MKTAYIAKQR", 1))
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (2, 1, pytest.approx(2 / 3))
    assert stats["by_source"] == {"server": {"entries": 1, "bytes": stats["bytes"]}}


def test_cleanup_through_the_api_goes_by_age_then_by_budget_oldest_used_first(make_user, api):
    staff = make_user("operator", is_staff=True)
    entries = fill_cache()
    size = {name: entry.size for name, entry in entries.items()}
    before = api(staff).get("/api/v1/msa/cache/stats/").json()
    assert before["entries"] == 4 and before["bytes"] == sum(size.values())
    assert before["by_source"]["local"] == {"entries": 1, "bytes": size["c"]}

    # By age: the entry unused for 40 days goes, the rest are younger than 30.
    response = api(staff).post("/api/v1/msa/cache/cleanup/", {"max_age_days": 30}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["removed"] == 1 and response.json()["freed"] == size["old"]
    assert present(entries) == {"b", "c", "d"}

    # By budget: the least recently used go until the rest fit.
    budget = size["c"] + size["d"]
    response = api(staff).post("/api/v1/msa/cache/cleanup/", {"budget": budget}, format="json")
    assert response.json()["removed"] == 1 and present(entries) == {"c", "d"}
    stats = response.json()["stats"]
    assert (stats["entries"], stats["bytes"]) == (2, budget)
    assert parse_datetime(stats["oldest"]) == NOW - timedelta(days=2.5)  # c's
    assert parse_datetime(stats["newest"]) == NOW - timedelta(days=1.5)  # d's

    # Only staff; bad limits are a 400 naming the field.
    assert api(make_user("dora")).post("/api/v1/msa/cache/cleanup/").status_code == 403
    assert api(make_user("ed")).get("/api/v1/msa/cache/stats/").status_code == 403
    response = api(staff).post("/api/v1/msa/cache/cleanup/", {"budget": -1}, format="json")
    assert response.status_code == 400 and "budget" in response.json()["detail"]
    assert present(entries) == {"c", "d"}

    response = api(staff).post("/api/v1/msa/cache/clear/")
    assert response.json()["removed"] == 2 and response.json()["stats"]["entries"] == 0
    assert present(entries) == set()


def test_the_command_cleans_up_and_clears_with_a_progress_bar():
    entries = fill_cache()
    out, err = io.StringIO(), io.StringIO()
    call_command("msacache", "stats", stdout=out)
    assert "entries 4," in out.getvalue() and "server: 3 entries" in out.getvalue()

    out = io.StringIO()
    call_command("msacache", "cleanup", "--days", "3", stdout=out, stderr=err)
    # Unused for 40 and 3.5 days: both go, with a progress bar over the two.
    assert "removed 2 entries" in out.getvalue() and "entries 2," in out.getvalue()
    assert "2/2" in err.getvalue()
    assert present(entries) == {"c", "d"}

    with pytest.raises(CommandError):
        call_command("msacache", "cleanup", "--budget", "-5")
    call_command("msacache", "clear", "--yes", stdout=io.StringIO(), stderr=io.StringIO())
    assert present(entries) == set()


def test_the_admin_cleans_up_clears_and_removes_files_with_entries(client, make_user, settings):
    settings.PORTAL_MSA_CACHE_MAX_AGE_DAYS = 30
    settings.PORTAL_MSA_CACHE_BUDGET = 10**9
    entries = fill_cache()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get("/admin/msa/msaentry/")
    assert page.status_code == 200
    assert "MSA cache: 4 entries" in page.content.decode()

    response = client.post("/admin/msa/msaentry/cleanup/", follow=True)
    assert "Removed 1 entries" in response.content.decode()
    assert present(entries) == {"b", "c", "d"}

    response = client.post(
        "/admin/msa/msaentry/",
        {"action": "remove_with_files", "_selected_action": [entries["b"].pk]},
        follow=True,
    )
    assert "Removed 1 entries" in response.content.decode()
    assert present(entries) == {"c", "d"}

    client.post("/admin/msa/msaentry/clear/", follow=True)
    assert present(entries) == set()
    # A member of staff without the delete permission may look, not remove.
    fill_cache()
    viewer = make_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_msaentry"))
    client.force_login(viewer)
    assert client.get("/admin/msa/msaentry/").status_code == 200
    assert client.post("/admin/msa/msaentry/clear/").status_code == 403
    assert MsaEntry.objects.count() == 4


def test_the_staff_page_shows_the_figures(client, make_user):
    fill_cache()
    cache_lookup(MsaEntry.objects.first().key)
    client.force_login(make_user("operator", is_staff=True))
    page = client.get("/msa/cache/").content.decode()
    assert '<td data-figure="entries">4</td>' in page
    assert '<td data-figure="hit-rate">100 %</td>' in page
    client.force_login(make_user("dora"))
    assert client.get("/msa/cache/").status_code == 302  # to the staff sign-in


def test_the_scheduler_cleans_up_the_cache_when_it_starts(transactional_db):
    entries = fill_cache()
    scheduler = ManagedProcess("scheduler", ["runscheduler"], PORTAL_MSA_CACHE_MAX_AGE_DAYS=30)
    try:
        wait_until(
            lambda: not MsaEntry.objects.filter(pk=entries["old"].pk).exists(),
            30,
            what="the scheduler's clean-up",
        )
    finally:
        scheduler.stop()
    assert present(entries) == {"b", "c", "d"}
