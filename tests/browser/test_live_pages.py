"""The live portal in Chromium against the real pool: a running job's page, cancel, the node
pool page, and what a stranger sees. With the Redis channel layer and with embedded polling."""

import time

import pytest
from django.contrib.auth import get_user_model

from jobs.models import Job, State
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def console_lines(page):
    return page.eval_on_selector_all("#log .line", "rows => rows.map(r => r.textContent)")


def test_a_running_job_shows_its_output_live_and_resumes_after_a_drop(
    stack, project, alice, browser_page
):
    stack.add_nodes("node-a")
    pk = stack.client(alice).submit(
        project,
        name="<b>bold</b> job",
        params={"seconds": 7, "say": "<img src=x onerror=alert(1)> & friends"},
    )["id"]
    page = browser_page
    sign_in(page, stack.url, "alice", "alice-password")
    page.goto(f"{stack.url}/jobs/{pk}/")
    page.wait_for_function("document.querySelectorAll('#log .line').length >= 3")
    first = len(console_lines(page))
    points = lambda: int(page.get_attribute("figure[data-metric=ticks]", "data-points") or 0)  # noqa: E731
    page.wait_for_selector("figure[data-metric=ticks]")
    first_points = points()
    # New lines and chart points arrive without a reload.
    page.wait_for_function(f"document.querySelectorAll('#log .line').length > {first}")
    wait_until(lambda: points() > first_points, 10, what="a new chart point")
    # The connection drops; the page reconnects from its last event id.
    page.evaluate("window.portalJob.socket.close()")
    page.wait_for_selector("#job-state.state-succeeded", timeout=60_000)
    lines = console_lines(page)
    stored = [
        e.data["line"] for e in Job.objects.get(pk=pk).events.filter(type="log").order_by("seq")
    ]
    assert lines == stored  # nothing missing, nothing doubled
    assert [line for line in lines if line.startswith("tick ")] == [
        f"tick {n}" for n in range(1, 8)
    ]
    # What a job and a user wrote shows as text, never as markup.
    assert "<img src=x onerror=alert(1)> & friends" in lines
    assert page.locator("#log img").count() == 0 and page.locator("h1 b").count() == 0
    assert "<b>bold</b> job" in page.inner_text("h1")
    assert page.inner_text("#job-percent") == "100%"
    page.wait_for_selector("#artifacts li")
    assert page.is_visible("#archive")
    # Ended, the page no longer claims a live connection: neither this one nor one opened now.
    assert page.locator("#job-live").is_hidden()
    page.reload()
    page.wait_for_selector("#artifacts li")
    page.wait_for_function("window.portalJob.ended")
    assert page.locator("#job-live").is_hidden() and page.inner_text("#job-percent") == "100%"
    screenshot(page, f"job-page-{stack.broker}")


def test_a_scientist_cancels_a_running_job_from_its_page(stack, project, alice, browser_page):
    stack.add_nodes("node-a")
    pk = stack.client(alice).submit(project, params={"seconds": 120, "ignore_term": True})["id"]
    page = browser_page
    sign_in(page, stack.url, "alice", "alice-password")
    page.goto(f"{stack.url}/jobs/{pk}/")
    page.wait_for_selector("#job-state.state-running")
    # The button asks first: dismissed, nothing happens; accepted, the job is cancelled.
    asked = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.click("#job-cancel")
    page.wait_for_timeout(300)
    assert Job.objects.get(pk=pk).state == State.RUNNING and page.is_enabled("#job-cancel")
    page.click("#job-cancel")
    page.wait_for_selector("#job-state.state-cancelled", timeout=10_000)
    assert asked[0].startswith(f"Cancel Job {pk}: ")
    assert Job.objects.get(pk=pk).state == State.CANCELLED
    assert not page.is_visible("#job-cancel")


def test_staff_see_a_node_go_offline_and_disable_it(stack, browser_page, db, tmp_path):
    get_user_model().objects.create_superuser("ops", password="ops-password")
    stack.add_nodes("node-a", "node-b", PORTAL_BOLTZ_CACHE=str(tmp_path))
    page = browser_page
    sign_in(page, stack.url, "ops", "ops-password")
    page.goto(f"{stack.url}/nodes/")
    row = lambda name: f"#pool tr[data-node='{name}']"  # noqa: E731
    page.wait_for_selector(f"{row('node-a')} .status-idle")
    # What each can run: no Boltz-2 weights here, and what an operator does about it.
    assert page.inner_text(f"{row('node-a')} [data-engine=boltz]") == (
        "boltz: not ready (no Boltz-2 weights: run `manage.py boltzweights`)"
    )
    assert page.inner_text(f"{row('node-a')} [data-engine=torch]") == "torch: ready"
    stack.nodes["node-a"].kill()  # its agent stops beating
    page.wait_for_selector(f"{row('node-a')} .status-offline", timeout=20_000)
    assert page.is_visible(f"{row('node-b')} .status-idle")
    page.click(f"{row('node-b')} button[data-action=disable]")
    page.wait_for_selector(f"{row('node-b')} .status-disabled")
    screenshot(page, f"node-pool-{stack.broker}")
    page.reload()
    page.wait_for_selector(f"{row('node-b')} .status-disabled")


def test_a_second_user_gets_no_page_and_no_stream(stack, project, alice, charlie, browser_page):
    stack.add_nodes("node-a")
    pk = stack.client(alice).submit(project, params={"seconds": 5})["id"]
    page = browser_page
    sign_in(page, stack.url, "charlie", "charlie-password")
    response = page.goto(f"{stack.url}/jobs/{pk}/")
    assert response.status == 404
    outcome = page.evaluate(
        """(id) => new Promise(resolve => {
            const seen = [];
            const socket = new WebSocket(`ws://${location.host}/ws/jobs/${id}/`);
            socket.onmessage = m => seen.push(m.data);
            socket.onclose = c => resolve({code: c.code, messages: seen.length});
        })""",
        pk,
    )
    assert outcome == {"code": 4404, "messages": 0}
    assert page.goto(f"{stack.url}/nodes/").url.startswith(f"{stack.url}/admin/login/")
    time.sleep(0.1)
