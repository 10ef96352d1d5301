"""The new-prediction page in Chromium: entities filled from a pasted FASTA, a pocket
constraint and affinity added, the job submitted as the Boltz document the server checks; a
mistake named beside the form, with what was described kept."""

import pytest
from django.utils import timezone

from jobs.models import Job
from nodes.services import node_create
from tests.boltzkit import BROKEN_CIF
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import LiveServer, PortalClient

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def server(boltz_cache, transactional_db):
    live = LiveServer(PORTAL_BOLTZ_CACHE=boltz_cache["cache"])
    yield live
    live.stop()


def boltz_ready_node():
    node, _ = node_create(name="cpu01", cpu_slots=1)
    node.engines = {"boltz": {"ready": True}}
    node.last_heartbeat_at = timezone.now()
    node.save()


def submit(page):
    # Sent from the keyboard: on this headless browser the button's box still moves as the
    # page settles after the number fields change, and a mouse click lands beside it.
    page.focus("#job-form button[type=submit]")
    page.keyboard.press("Enter")


def test_a_scientist_describes_a_complex_and_submits_it(server, project, alice, browser_page):
    boltz_ready_node()
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
    submit(page)
    # The first prediction a web process checks imports boltz (and torch) for its parser.
    page.wait_for_url(f"{server.url}/jobs/*/", timeout=60_000)

    job = Job.objects.get()
    assert job.params["seed"] == 7 and job.params["sampling_steps"] == 10
    # No MSA server is configured: a protein without an MSA of its own is predicted from its
    # single sequence, as the page said.
    assert job.params["msa"] == "single"
    assert job.params["input"] == {
        "version": 1,
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFS"}},
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
    submit(page)
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


SEQUENCE = "MKTAYIAKQRQISFVKSHFS"


def test_a_protein_takes_an_uploaded_msa_and_a_template_row_survives_a_mistake(
    server, project, alice, browser_page
):
    """A protein chain's MSA is chosen among the project's A3M and CSV uploads, a template
    among its mmCIF and PDB uploads; a template boltz cannot use is named, and the form comes
    back with the MSA and the template row as they were."""
    boltz_ready_node()
    client = PortalClient(server.url, alice)

    def upload(name, text):
        response = client.session.post(
            f"{server.url}/api/v1/uploads/",
            data={"project": project.pk},
            files={"file": (name, text.encode())},
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    msa = upload("homologues.a3m", f">query\n{SEQUENCE}\n>hom\n{SEQUENCE[:-1]}E\n")
    broken = upload("broken.cif", BROKEN_CIF)
    upload("notes.fasta", f">a\n{SEQUENCE}\n")
    page = browser_page
    sign_in(page, server.url, "alice", "alice-password")
    page.goto(f"{server.url}/projects/{project.pk}/jobs/new/predict/")
    choices = page.locator("#entities [data-field=msa] option").all_inner_texts()
    assert choices == ["from the job's MSA source", "single sequence", "homologues.a3m"]
    assert "No MSA server is configured" in page.inner_text("#msa-sources")
    page.fill("#entities [data-field=sequence]", SEQUENCE)
    page.select_option("#entities [data-field=msa]", label="homologues.a3m")
    page.click("#add-template")
    assert page.locator("#templates [data-field=structure] option").all_inner_texts() == [
        "broken.cif"
    ]
    page.fill("#templates [data-field=chains]", "A")
    page.check("#templates [data-field=force]")
    page.fill("#templates [data-field=threshold]", "2.5")
    screenshot(page, "prediction-form-msa-template")
    submit(page)
    page.wait_for_selector(".errorlist", timeout=60_000)
    assert "Template 1: boltz cannot use 'broken.cif'" in page.inner_text(".errorlist")
    assert page.input_value("#entities [data-field=msa]") == str(msa)
    assert page.input_value("#templates [data-field=structure]") == str(broken)
    assert page.input_value("#templates [data-field=chains]") == "A"
    assert page.is_checked("#templates [data-field=force]")
    assert page.input_value("#templates [data-field=threshold]") == "2.5"
    assert not Job.objects.exists()

    # Without the template, the prediction goes in with the chain's MSA, which joins the
    # job's inputs.
    page.click("#templates .template button")
    submit(page)
    page.wait_for_url(f"{server.url}/jobs/*/", timeout=60_000)
    job = Job.objects.get()
    assert job.params["input"]["sequences"] == [
        {"protein": {"id": "A", "sequence": SEQUENCE, "msa": msa}}
    ]
    assert "templates" not in job.params["input"]
    assert [i.upload_id for i in job.job_inputs.order_by("position")] == [msa]
