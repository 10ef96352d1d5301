import hashlib

import pytest

from portal.uploads.models import Upload
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_scientist_uploads_a_file_and_watches_the_progress_bar(
    portal_server, project, alice, browser_page, tmp_path
):
    path = tmp_path / "proteome.fasta"
    record = b">p\n" + b"MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ\n" * 60
    path.write_bytes(record * 4_000)  # about 8 MB
    page = browser_page
    sign_in(page, portal_server.url, "alice", "alice-password")
    page.goto(f"{portal_server.url}/projects/{project.pk}/uploads/new/")
    # The bytes go out at 4 MB/s, as over a slow link: on loopback they would all be sent
    # before the page could show a step between 0 and 100 %.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 4e6},
    )
    # Record every percentage the page shows while the bytes go out.
    page.evaluate(
        """() => {
            window.seen = [];
            new MutationObserver(() => window.seen.push(
                document.getElementById('upload-percent').textContent
            )).observe(document.getElementById('upload-percent'), {childList: true});
        }"""
    )
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-start")
    page.wait_for_selector("#upload-message.success", timeout=120_000)
    message = page.inner_text("#upload-message")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in message
    seen = page.evaluate("window.seen")
    assert seen[-1] == "100%"
    assert any(value not in ("0%", "100%") for value in seen), seen
    assert Upload.objects.get().sha256 == digest
    screenshot(page, "upload-page")


def test_a_refused_file_shows_the_portals_reason(
    portal_server, project, alice, browser_page, tmp_path
):
    path = tmp_path / "broken.fasta"
    path.write_bytes(b">a\nACDE\n>b\nAC1DE\n")
    page = browser_page
    sign_in(page, portal_server.url, "alice", "alice-password")
    page.goto(f"{portal_server.url}/projects/{project.pk}/uploads/new/")
    page.set_input_files("#upload-file", str(path))
    page.click("#upload-start")
    page.wait_for_selector("#upload-message.error")
    assert "Line 4: '1' is not a residue letter." in page.inner_text("#upload-message")
    assert Upload.objects.count() == 0
