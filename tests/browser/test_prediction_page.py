"""A finished prediction's page in Chromium: the structure in Mol*, a switch between samples, the
confidence tables and the PAE heatmap, all from the job's own artifacts (a real prediction by a
real node, with the tiny random Boltz-2 the tests build)."""

import json

import pytest

from jobs.models import Job, State
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import boltz_ready, wait_until
from tests.predictions.test_predict import FAST, LIGAND, PROTEIN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STRUCTURE = "portalPrediction.viewer.plugin.managers.structure.hierarchy.current.structures[0]"
# The complex, with the ligand's binding affinity asked for.
AFFINITY = LIGAND + "properties:\n  - affinity: {binder: B}\n"


def test_a_finished_prediction_shows_its_structure_confidence_and_pae(
    boltz_stack,
    project,
    alice,
    browser_page,
):
    boltz_stack.add_nodes("node-a")
    wait_until(lambda: boltz_ready("node-a"), 30, what="the node to report boltz ready")
    client = boltz_stack.client(alice)
    uploaded = client.session.post(
        f"{boltz_stack.url}/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("complex.yaml", AFFINITY.encode())},
    ).json()
    pk = client.submit(
        project,
        kind="predict",
        params={**FAST, "seed": 3, "diffusion_samples": 2},
        inputs=[uploaded["id"]],
    )["id"]
    wait_until(lambda: Job.objects.get(pk=pk).is_finished, 90, what="the prediction")
    assert Job.objects.get(pk=pk).state == State.SUCCEEDED

    def artifact(name):
        return client.get(f"/api/v1/jobs/{pk}/artifacts/{name}").content

    atoms = sum(
        line.startswith((b"ATOM", b"HETATM"))
        for line in artifact(f"job-{pk}_model_0.cif").splitlines()
    )
    page = browser_page
    elsewhere = []  # the page asks nothing of any other server
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((boltz_stack.url, "data:", "blob:"))
            else elsewhere.append(r.url)
        ),
    )
    sign_in(page, boltz_stack.url, "alice", "alice-password")
    page.goto(f"{boltz_stack.url}/jobs/{pk}/")
    page.wait_for_function(
        "window.portalPrediction && portalPrediction.loaded !== null", timeout=60_000
    )
    page.wait_for_function(f"{STRUCTURE} !== undefined", timeout=30_000)

    # Mol* holds the structure: every atom of the file.
    assert page.evaluate(f"{STRUCTURE}.cell.obj.data.elementCount") == atoms
    first_x = page.evaluate(f"{STRUCTURE}.cell.obj.data.models[0].atomicConformation.x[0]")

    # The confidence tables say what the sample's confidence JSON says.
    confidence = json.loads(artifact(f"confidence_job-{pk}_model_0.json"))
    assert page.inner_text('#confidence td[data-key="confidence score"]') == (
        f"{confidence['confidence_score']:.3f}"
    )
    assert page.inner_text('#confidence td[data-key="ipTM"]') == f"{confidence['iptm']:.3f}"
    assert page.inner_text('#pairs td[data-pair="A-B"]') == (
        f"{confidence['pair_chains_iptm']['0']['1']:.3f}"
    )
    assert page.inner_text('#pairs td[data-pair="A-A"]') == f"{confidence['chains_ptm']['0']:.3f}"

    # The PAE heatmap is drawn: one row and column per token (22 residues and 13 ligand atoms).
    page.wait_for_function("document.getElementById('pae').dataset.size !== undefined")
    assert page.get_attribute("#pae", "data-size") == "35"
    painted = page.evaluate(
        "(() => { const c = document.getElementById('pae').getContext('2d');"
        " const d = c.getImageData(0, 0, c.canvas.width, c.canvas.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )
    assert painted == 420 * 420
    screenshot(page, "prediction-page")

    # Another sample: another structure (its own coordinates), and its own figures.
    page.select_option("#sample", "1")
    page.wait_for_function(
        "portalPrediction.sample === 1 && document.getElementById('pae').dataset.sample === '1'"
    )
    page.wait_for_function(f"{STRUCTURE} !== undefined")
    assert page.evaluate(f"{STRUCTURE}.cell.obj.data.models[0].atomicConformation.x[0]") != first_x
    other = json.loads(artifact(f"confidence_job-{pk}_model_1.json"))
    assert page.inner_text('#confidence td[data-key="confidence score"]') == (
        f"{other['confidence_score']:.3f}"
    )
    # The samples side by side, each row its confidence JSON's figures; a row shows its sample.
    page.wait_for_function(
        "document.querySelectorAll('#samples tbody tr').length === 2", timeout=60_000
    )  # each row's JSON is fetched; a loaded 2-core machine took over 20 s once
    rows = page.eval_on_selector_all(
        "#samples tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    for k, row in enumerate(rows):
        sample = json.loads(artifact(f"confidence_job-{pk}_model_{k}.json"))
        assert row == [
            str(k),
            f"{sample['confidence_score']:.3f}",
            f"{sample['ptm']:.3f}",
            f"{sample['iptm']:.3f}",
            f"{sample['complex_plddt']:.3f}",
        ]
    page.click("#samples tbody tr[data-sample='0']")
    page.wait_for_function("portalPrediction.sample === 0")

    # pLDDT per residue: a chart a chain, as many points as the chain has tokens.
    page.wait_for_function("document.getElementById('plddt-charts').dataset.sample === '0'")
    charts = page.eval_on_selector_all(
        "#plddt-charts figure", "fs => fs.map(f => [f.dataset.chain, f.dataset.points])"
    )
    assert charts == [["A", "22"], ["B", "13"]]
    values = client.get(f"/api/v1/jobs/{pk}/plddt/?sample=0").json()["values"]
    assert len(values) == 35 and all(0 <= v <= 100 for v in values)

    # Mol*'s colourings as buttons: by chain, then back to pLDDT.
    page.click("#colourings button[data-theme=chain-id]")
    page.wait_for_function(
        "document.getElementById('prediction').dataset.theme === 'chain-id'"
        f" && {STRUCTURE} !== undefined"
    )
    screenshot(page, "prediction-by-chain")
    page.click("#colourings button[data-theme=plddt-confidence]")

    # The affinity, with its meaning: the figures are the affinity JSON's.
    affinity = json.loads(artifact(f"affinity_job-{pk}.json"))
    value = affinity["affinity_pred_value"]
    assert page.inner_text('#affinity-figures td[data-key="value"]') == f"{value:.3f}"
    assert page.inner_text('#affinity-figures td[data-key="probability"]') == (
        f"{affinity['affinity_probability_binary']:.3f}"
    )
    ic50 = page.inner_text('#affinity-figures td[data-key="ic50"]')
    number, unit = ic50.split()
    assert float(number) * {"nM": 1e-3, "µM": 1, "mM": 1e3}[unit] == pytest.approx(
        10**value, rel=1e-2
    )
    assert page.inner_text('#affinity-figures td[data-key="member-1"]') == (
        f"{affinity['affinity_pred_value1']:.3f} / {affinity['affinity_probability_binary1']:.3f}"
    )
    assert page.get_attribute("#af3-json", "href") == f"/api/v1/jobs/{pk}/af3/"
    screenshot(page, "prediction-affinity")
    assert elsewhere == []

    # A monomer without an MSA: no interface figures (boltz's 0 would read as a bad score),
    # and the page says it ran single sequence.
    protein = client.session.post(
        f"{boltz_stack.url}/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("monomer.yaml", PROTEIN.encode())},
    ).json()
    mono = client.submit(project, kind="predict", params=FAST, inputs=[protein["id"]])["id"]
    wait_until(lambda: Job.objects.get(pk=mono).is_finished, 90, what="the monomer")
    assert Job.objects.get(pk=mono).name == "monomer"  # named after its input
    page.goto(f"{boltz_stack.url}/jobs/{mono}/")
    page.wait_for_selector('#confidence td[data-key="pTM"]')
    labels = page.eval_on_selector_all("#confidence th", "cells => cells.map(c => c.textContent)")
    assert "pTM" in labels and "complex pLDDT" in labels
    assert not {"ipTM", "complex ipLDDT", "complex iPDE (Å)", "ligand ipTM"} & set(labels)
    assert page.inner_text("#single-sequence").startswith(
        "Predicted without an MSA (single sequence): chain A."
    )
    assert not page.is_visible("#affinity")
    screenshot(page, "prediction-monomer-single-sequence")

    # Run again with changes: the form comes filled from this job.
    page.click("#run-again")
    page.wait_for_selector(".entity[data-kind=protein]")
    assert page.input_value(".entity [data-field=sequence]") == "MKTAYIAKQRQISFVKSHFSRQ"
    assert page.input_value("#id_sampling_steps") == str(FAST["sampling_steps"])
