"""What a scientist sees before and while a prediction runs, in Chromium: a portal without
Boltz-2 weights says so before a form is filled; a queued job says its place; a running
prediction's progress moves step by step."""

import pytest

from jobs.models import Job, State
from nodes.models import Node
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import boltz_ready, wait_until
from tests.predictions.test_predict import PROTEIN

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_no_weights_and_a_queued_jobs_place(orm_stack, project, alice, browser_page, tmp_path):
    # One node without Boltz-2 weights, disabled so that the jobs below stay in the queue.
    orm_stack.add_nodes("node-a", PORTAL_BOLTZ_CACHE=str(tmp_path))
    Node.objects.filter(name="node-a").update(enabled=False)
    page = browser_page
    sign_in(page, orm_stack.url, "alice", "alice-password")
    page.goto(f"{orm_stack.url}/")
    assert "No node of this portal has the Boltz-2 weights" in page.inner_text("#unavailable")
    screenshot(page, "no-weights-dashboard")
    page.goto(f"{orm_stack.url}/projects/{project.pk}/jobs/new/predict/")
    assert page.is_visible("#unavailable")
    assert page.is_disabled("#job-form button[type=submit]")
    screenshot(page, "no-weights-predict-form")

    client = orm_stack.client(alice)
    ids = [client.submit(project, params={"seconds": n + 1})["id"] for n in range(3)]
    page.goto(f"{orm_stack.url}/jobs/{ids[2]}/")
    assert page.inner_text("#job-where") == "waiting: number 3 in the queue, for a node: none is up"
    screenshot(page, "queued-job-place")


def test_a_50_step_predictions_progress_moves_on_its_page(
    boltz_stack, project, alice, browser_page
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), 30, what="the node to report boltz ready")
    client = boltz_stack.client(alice)
    uploaded = client.session.post(
        f"{boltz_stack.url}/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("monomer.yaml", PROTEIN.encode())},
    ).json()
    params = {"recycling_steps": 1, "sampling_steps": 50, "seed": 5}
    pk = client.submit(project, kind="predict", params=params, inputs=[uploaded["id"]])["id"]
    page = browser_page
    sign_in(page, boltz_stack.url, "alice", "alice-password")
    page.goto(f"{boltz_stack.url}/jobs/{pk}/")
    # Every message the progress line shows, as the page shows it.
    page.evaluate(
        "window.seen = [];"
        "new MutationObserver(() => seen.push("
        "document.getElementById('job-progress-message').textContent))"
        ".observe(document.getElementById('job-progress-message'),"
        " {childList: true, characterData: true, subtree: true})"
    )
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, 90, what="the prediction")
    assert Job.objects.get(pk=pk).state == State.SUCCEEDED
    page.wait_for_selector("#job-state.state-succeeded")
    seen = page.evaluate("seen")
    steps = {m for m in seen if "diffusion, step" in m or "trunk, recycling pass" in m}
    assert len(steps) >= 5, seen
    screenshot(page, "prediction-progress-done")


def test_the_design_form_fits_its_binder_type_and_says_how_many_predictions_it_runs(
    portal_server, project, alice, browser_page
):
    page = browser_page
    sign_in(page, portal_server.url, "alice", "alice-password")
    page.goto(f"{portal_server.url}/projects/{project.pk}/jobs/new/design/")
    # A linear binder has no linker and no glycan; the target is a box for a long sequence;
    # an empty option is empty, not "null".
    assert not page.is_visible("#id_linker") and not page.is_visible("#id_glycan")
    assert page.evaluate("document.getElementById('id_target').tagName") == "TEXTAREA"
    assert page.input_value("#id_constraints") == ""
    # Defaults: 16, then 12 new (16 - 4 elites) in each of 11 more generations.
    assert page.get_attribute("#design-size", "data-predictions") == str(16 + 11 * 12)
    page.select_option("#id_binder_type", "bicyclic")
    assert page.is_visible("#id_linker") and not page.is_visible("#id_glycan")
    page.select_option("#id_binder_type", "glycopeptide")
    assert page.is_visible("#id_glycan") and not page.is_visible("#id_linker")
    page.fill("#id_generations", "3")
    assert page.get_attribute("#design-size", "data-predictions") == str(16 + 2 * 12)
    assert page.inner_text("#design-size").startswith("This campaign runs up to 40 predictions")
    screenshot(page, "design-form")
