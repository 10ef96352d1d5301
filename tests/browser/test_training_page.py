import time

import pytest

from tests.browser.conftest import screenshot, sign_in
from tests.http import post_file
from tests.training.datasets import write_motif_csv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_scientist_starts_training_and_watches_the_loss_chart_grow(
    orm_stack, project, alice, browser_page, tmp_path
):
    orm_stack.add_nodes("node-a")
    client = orm_stack.client(alice)
    key = client.session.headers["Authorization"].split()[1]
    status, _ = post_file(
        f"{orm_stack.url}/api/v1/uploads/",
        key,
        {"project": project.pk},
        write_motif_csv(tmp_path / "binders.csv"),
    )
    assert status == 201
    page = browser_page
    sign_in(page, orm_stack.url, "alice", "alice-password")
    page.goto(f"{orm_stack.url}/projects/{project.pk}/jobs/new/train/")
    # The columns detected in the dataset are offered.
    page.wait_for_selector("select#id_label_column option[value=label]", state="attached")
    assert page.input_value("#id_sequence_column") == "sequence"
    assert "non-binder" in page.inner_text("#preview table")
    page.fill("#id_epochs", "12")
    page.fill("#id_name", "RGD binders")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(f"{orm_stack.url}/jobs/*/")

    chart = "figure[data-metric=train_loss]"
    page.wait_for_selector(chart, timeout=60_000)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        points = int(page.get_attribute(chart, "data-points") or 0)
        if not seen or points != seen[-1]:
            seen.append(points)
        if points >= 12:
            break
        time.sleep(0.1)
    # Point by point, without a reload: several counts seen on the way to 12.
    assert seen[-1] == 12 and len(seen) >= 4 and seen == sorted(seen)
    page.wait_for_selector("#job-state.state-succeeded", timeout=30_000)
    assert page.is_visible("figure[data-metric=val_accuracy]")
    assert page.is_visible("#score-link")
    screenshot(page, "training-job-page")
