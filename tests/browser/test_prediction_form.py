"""The new-prediction page in Chromium: entities filled from a pasted FASTA, a pocket
constraint and affinity added, the job submitted as the Boltz document the server checks; a
mistake named beside the form, with what was described kept."""

import pytest
from django.utils import timezone

from jobs.models import Job
from nodes.services import node_create
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(boltz_cache, transactional_db):
    live = LiveServer(PORTAL_BOLTZ_CACHE=boltz_cache["cache"])
    yield live
    live.stop()


def test_a_scientist_describes_a_complex_and_submits_it(server, project, alice, browser_page):
    node, _ = node_create(name="cpu01", cpu_slots=1)
    node.engines = {"boltz": {"ready": True}}
    node.last_heartbeat_at = timezone.now()
    node.save()
    page = browser_page
    sign_in(page, server.url, "alice", "alice-password")
    page.goto(f"{server.url}/projects/{project.pk}/jobs/new/predict/")
    page.click("#fasta-box summary")
    page.fill("#fasta", ">A|protein\nMKTAYIAKQR\nQISFVKSHFS\n>B|smiles\nCCO\n")
    page.click("#fasta-fill")
    assert page.locator("#entities .entity").count() == 2
    page.click("#add-pocket")
    page.fill("#constraints [data-field=binder]", "B")
    page.fill("#constraints [data-field=contacts]", "A:3, A:5")
    page.select_option("#affinity", "B")
    page.fill("#id_seed", "7")
    page.fill("#id_sampling_steps", "10")
    screenshot(page, "prediction-form")
    # Sent from the keyboard: on this headless browser the button's box still moves as the
    # page settles after the number fields change, and a mouse click lands beside it.
    page.focus("#job-form button[type=submit]")
    page.keyboard.press("Enter")
    # The first prediction a web process checks imports boltz (and torch) for its parser.
    page.wait_for_url(f"{server.url}/jobs/*/", timeout=60_000)

    job = Job.objects.get()
    assert job.params["seed"] == 7 and job.params["sampling_steps"] == 10
    assert job.params["input"] == {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFS", "msa": "empty"}},
            {"ligand": {"id": "B", "smiles": "CCO"}},
        ],
        "constraints": [
            {"pocket": {"binder": "B", "contacts": [["A", 3], ["A", 5]], "max_distance": 6}}
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }

    # A mistake is named on the page, and everything described stays as it was: entities,
    # modifications, constraints and the affinity ligand.
    page.goto(f"{server.url}/projects/{project.pk}/jobs/new/predict/")
    page.fill("#entities [data-field=sequence]", "MKT1AYSK")
    page.fill("#entities [data-field=modifications]", "2:MLY")
    page.click("#add-ligand")
    page.fill("#entities .entity[data-kind=ligand] [data-field=ligand]", "CCO")
    page.click("#add-contact")
    page.fill("#constraints [data-field=token1]", "A:2")
    page.fill("#constraints [data-field=token2]", "B:1")
    page.fill("#constraints [data-field=distance]", "8")
    page.select_option("#affinity", "B")
    page.focus("#job-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".errorlist")
    assert "'1' at position 4 is not a protein letter" in page.inner_text(".errorlist")
    assert page.input_value("#entities [data-field=sequence]") == "MKT1AYSK"
    assert page.input_value("#entities [data-field=modifications]") == "2:MLY"
    assert page.input_value("#entities .entity[data-kind=ligand] [data-field=ligand]") == "CCO"
    assert page.input_value("#constraints [data-field=token1]") == "A:2"
    assert page.input_value("#constraints [data-field=token2]") == "B:1"
    assert page.input_value("#constraints [data-field=distance]") == "8"
    assert page.input_value("#affinity") == "B"
    assert Job.objects.count() == 1
