"""A screen's page in Chromium while it runs on a real node: the table and the histogram of
predicted affinity grow as the ligands' predictions end, and a ranked ligand opens its
prediction with the complex in Mol*."""

import pytest

from jobs.models import Job, State
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import boltz_ready, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIGANDS = (
    "name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\nethanol,CCO\nphenol,c1ccccc1O\n"
    "acetone,CC(C)=O\nglycine,NCC(=O)O\nbenzene,c1ccccc1\n"
)
SCREEN = {
    "mode": "cofold",
    "target": "MKTAYIAKQRQISFVKSHFSRQ",
    "msa": "single",
    "recycling_steps": 0,
    "sampling_steps": 5,
    "sampling_steps_affinity": 5,
    "diffusion_samples_affinity": 1,
    "seed": 4,
}


def test_the_screen_page_grows_live_and_a_ligand_opens_in_molstar(
    boltz_stack, project, alice, browser_page
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), 30, what="the node to report boltz ready")
    client = boltz_stack.client(alice)
    ligands = client.session.post(
        client.url + "/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("ligands.csv", LIGANDS)},
        timeout=30,
    ).json()
    page = browser_page
    sign_in(page, boltz_stack.url, "alice", "alice-password")
    pk = client.submit(project, kind="screen", params=SCREEN, inputs=[ligands["id"]])["id"]
    page.goto(f"{boltz_stack.url}/jobs/{pk}/")

    scored, charted = set(), set()
    while not Job.objects.get(pk=pk).is_finished:
        scored.add(int(page.get_attribute("#screen", "data-scored") or 0))
        charted.add(int(page.get_attribute("#screen", "data-charted") or 0))
        page.wait_for_timeout(200)
    assert Job.objects.get(pk=pk).state == State.SUCCEEDED
    page.wait_for_function("document.querySelector('#screen').dataset.scored === '6'")
    page.wait_for_function("document.querySelector('#screen').dataset.charted === '6'")
    assert len(scored) >= 3 and len(charted) >= 3  # it grew while we watched
    first = page.locator("#screen-table tbody tr").first
    assert first.locator("td").first.inner_text() == "1"
    screenshot(page, "screen")

    # The strongest predicted binder opens its prediction, whose complex Mol* shows.
    first.locator("a").click()
    page.wait_for_url(f"{boltz_stack.url}/jobs/*/")
    assert Job.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1])).parent_id == pk
    page.wait_for_function(
        "window.portalPrediction && portalPrediction.loaded !== null", timeout=60_000
    )
