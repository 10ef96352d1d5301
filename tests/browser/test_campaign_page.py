"""A design campaign's page in Chromium while it runs on a real node: the fitness charts and
the candidates table grow as the candidates' predictions end, and a ranked candidate opens its
prediction with the structure in Mol*."""

import pytest

from jobs.models import Job, State
from tests.browser.conftest import screenshot, sign_in
from tests.browser.test_prediction_page import STRUCTURE
from tests.conftest import boltz_ready, wait_until
from tests.designs.test_pool import CAMPAIGN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_campaign_page_grows_live_and_a_candidate_opens_in_molstar(
    boltz_stack, project, alice, browser_page
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), 30, what="the node to report boltz ready")
    page = browser_page
    sign_in(page, boltz_stack.url, "alice", "alice-password")
    pk = boltz_stack.client(alice).submit(project, kind="design", params=CAMPAIGN)["id"]
    page.goto(f"{boltz_stack.url}/jobs/{pk}/")

    # Seen growing: rows scored one after another, the charts' points generation by generation.
    scored, points = set(), set()
    while not Job.objects.get(pk=pk).is_finished:
        scored.add(int(page.get_attribute("#candidates", "data-scored") or 0))
        chart = page.locator("figure[data-metric=best_fitness]")
        points.add(int(chart.get_attribute("data-points") or 0) if chart.count() else 0)
        page.wait_for_timeout(200)
    assert Job.objects.get(pk=pk).state == State.SUCCEEDED
    page.wait_for_function(
        "document.querySelector('#candidates').dataset.scored === '8'", timeout=10_000
    )
    page.wait_for_function(
        "document.querySelector('figure[data-metric=best_fitness]').dataset.points === '3'"
    )
    assert len(scored) >= 3 and len(points) >= 2  # it grew while we watched
    assert page.locator("figure[data-metric=mean_fitness]").get_attribute("data-points") == "3"
    # Ended, it says so: 100 %, how it ended, and no candidate still shown running.
    page.wait_for_selector("#job-state.state-succeeded")
    assert page.inner_text("#job-percent") == "100%"
    ended = Job.objects.get(pk=pk).transitions.order_by("-at", "-id").first().reason
    page.wait_for_function(
        f"document.getElementById('job-progress-message').textContent === {ended!r}"
    )
    page.wait_for_function(
        "![...document.querySelectorAll('#job-family [data-child]')]"
        ".some(chip => chip.textContent !== 'succeeded')"
    )
    screenshot(page, "design-campaign-finished")
    # In the list, its candidates are grouped under it.
    page.goto(f"{boltz_stack.url}/jobs/")
    grouped = page.inner_text(f"#job-table a[href='/jobs/{pk}/'] + [data-runs]")
    assert grouped == "+ 8 jobs it ran"
    screenshot(page, "design-campaign-in-the-list")
    page.goto(f"{boltz_stack.url}/jobs/{pk}/")
    first = page.locator("#candidates-table tbody tr").first
    assert first.locator("td").first.inner_text() == "1"
    screenshot(page, "design-campaign")

    # The best candidate opens its prediction, whose structure Mol* shows.
    first.locator("a").click()
    page.wait_for_url(f"{boltz_stack.url}/jobs/*/")
    assert Job.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1])).parent_id == pk
    page.wait_for_function(
        "window.portalPrediction && portalPrediction.loaded !== null", timeout=60_000
    )
    page.wait_for_function(f"{STRUCTURE} !== undefined", timeout=30_000)
