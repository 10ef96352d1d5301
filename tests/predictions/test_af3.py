"""The `af3` kind: AlphaFold 3 on the nodes that have it. Real AlphaFold 3 cannot run here (its
weights are licensed, it needs a GPU); the node runs tests/af3_standin.py as its
PORTAL_AF3_COMMAND, which checks its flags and input JSON as AlphaFold 3 does and writes
AlphaFold 3's documented output layout (see its docstring)."""

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jobs.models import Job, State
from nodes.models import Node
from tests.conftest import wait_until

STANDIN = Path(__file__).resolve().parent.parent / "af3_standin.py"
COMMAND = f"{sys.executable} {STANDIN}"
GPU = json.dumps([{"name": "made-up 80 GB", "memory_total": 80 * 2**30}])
MSA = ">query\nMKTAYIAKQRQISFVKSHFSRQ\n>hit\nMKTAYIAKQRQISFVKAHFSRQ\n"


# AlphaFold 3's own input, as a scientist writes it for AlphaFold 3 (its docs/input.md).
AF3_INPUT = {
    "dialect": "alphafold3",
    "version": 2,
    "name": "my complex",
    "modelSeeds": [11],
    "sequences": [
        {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFSRQ", "unpairedMsa": MSA,
                     "pairedMsa": "", "templates": []}},
        {"protein": {"id": ["B", "C"], "sequence": "GSHMKVLAAGIVG",
                     "modifications": [{"ptmType": "SEP", "ptmPosition": 4}]}},
        {"ligand": {"id": "D", "ccdCodes": ["ATP"]}},
    ],
    "bondedAtomPairs": [[["A", 1, "CA"], ["D", 1, "PG"]]],
}  # fmt: skip


def af3_dirs(tmp_path: Path) -> dict:
    weights, databases = tmp_path / "af3-weights", tmp_path / "af3-databases"
    weights.mkdir()
    (weights / "af3.bin.zst").write_bytes(b"made-up weights")
    databases.mkdir()
    return {
        "PORTAL_AF3_COMMAND": COMMAND,
        "PORTAL_AF3_MODEL_DIR": str(weights),
        "PORTAL_AF3_DB_DIR": str(databases),
        "PORTAL_AF3_VERSION": "3.0.1",
    }


@pytest.mark.slow
def test_af3_runs_on_the_node_that_has_it_and_its_result_is_a_predictions(
    boltz_stack, project, alice, tmp_path, client
):
    browser = client  # Django's test client, for the page (the API goes over HTTP)
    browser.force_login(alice)
    af3 = af3_dirs(tmp_path)
    # `{gpu}` is put in as the job's GPU (here in a flag AlphaFold 3 has, for the stand-in to
    # show it; a container is told it by `--gpus device={gpu}`).
    af3["PORTAL_AF3_COMMAND"] += " --gpu_device={gpu}"
    boltz_stack.add_nodes("plain", cpu_slots=0, PORTAL_FAKE_GPUS=GPU)
    boltz_stack.add_nodes("alpha", cpu_slots=0, PORTAL_FAKE_GPUS=GPU, **af3)
    wait_until(lambda: Node.objects.get(name="alpha").can_run("af3"), 30, what="AlphaFold 3 ready")
    client = boltz_stack.client(alice)
    msa = client.session.post(
        client.url + "/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("a.a3m", MSA)},
        timeout=30,
    ).json()
    complex_ = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFSRQ", "msa": msa["id"]}},
            {"protein": {"id": "b", "sequence": "GSHMKVLAAGIVG", "cyclic": True, "msa": "empty"}},
            {"ligand": {"id": "L", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}},
        ]
    }
    given = client.submit(
        project,
        kind="af3",
        params={"input": complex_, "model_seeds": [7, 8], "num_diffusion_samples": 2},
    )
    searched = client.submit(
        project,
        kind="af3",
        params={
            "input": {"sequences": [{"protein": {"id": "A", "sequence": "MADEEKLPPGWEKRMSRSSGR"}}]},
            "data_pipeline": True,
        },
    )
    own = client.session.post(
        client.url + "/api/v1/uploads/",
        data={"project": project.pk},
        files={"file": ("written-for-af3.json", json.dumps(AF3_INPUT))},
        timeout=30,
    ).json()
    as_written = client.submit(project, kind="af3", inputs=[own["id"]])
    ids = [given["id"], searched["id"], as_written["id"]]
    wait_until(lambda: all(Job.objects.get(pk=pk).is_finished for pk in ids), 90, what="af3")
    jobs = [Job.objects.get(pk=pk) for pk in ids]
    assert [j.state for j in jobs] == [State.SUCCEEDED] * 3, [j.error for j in jobs]
    assert {j.node.name for j in jobs} == {"alpha"}  # never the node without AlphaFold 3
    job, alone, written = jobs

    # AlphaFold 3's own JSON ran as written: its seeds, its MSA, its modification and bond;
    # only its name (the output folder) is the job's, and the homodimer that brought no MSA
    # got the portal's (none here: single sequence, as its page says).
    assert written.name == "written-for-af3" and written.warnings == []
    ran = json.loads(artifact(written, "af3_input.json"))
    assert ran["name"] == f"written-for-af3 job {written.pk}" and ran["modelSeeds"] == [11]
    assert ran["bondedAtomPairs"] == AF3_INPUT["bondedAtomPairs"]
    first, dimer, atp = ran["sequences"]
    assert first == AF3_INPUT["sequences"][0] and atp == AF3_INPUT["sequences"][2]
    assert dimer["protein"] == {
        **AF3_INPUT["sequences"][1]["protein"], "unpairedMsa": "", "pairedMsa": "", "templates": [],
    }  # fmt: skip
    said = [e.data.get("line", "") for e in written.events.filter(type="log")]
    flags = json.loads(next(s for s in said if s.startswith("stand-in")).split("flags: ")[1])
    assert flags["run_data_pipeline"] is False
    page = browser.get(f"/jobs/{written.pk}/").content.decode()
    pae = client.session.get(f"{client.url}/api/v1/jobs/{written.pk}/pae/", timeout=30).json()
    assert [c["name"] for c in pae["chains"]] == ["A", "B", "C", "D"]
    assert "Predicted without an MSA (single sequence): chains B, C." in page
    # Run again with changes: the form has the JSON chosen again, not the portal's note of it.
    form = browser.get(f"/projects/{project.pk}/jobs/new/af3/?from={written.pk}").content.decode()
    assert f'<option value="{own["id"]}" selected>' in form
    textarea = form.split('name="input"')[1].split(">", 1)[1].split("</textarea>")[0]
    assert textarea.strip() == ""

    # What the export could not carry, said at submission.
    assert any("is cyclic" in w for w in job.warnings)
    # AlphaFold 3 got the portal's MSAs and was told not to search; the other job searched.
    said = [e.data.get("line", "") for e in job.events.filter(type="log")]
    flags = json.loads(next(s for s in said if s.startswith("stand-in")).split("flags: ")[1])
    assert flags["run_data_pipeline"] is False and flags["num_diffusion_samples"] == 2
    assert flags["model_dir"] == af3["PORTAL_AF3_MODEL_DIR"] and flags["gpu_device"] == job.gpu
    lines = [e.data.get("line", "") for e in alone.events.filter(type="log")]
    assert "Running data pipeline..." in lines
    sent = json.loads(artifact(job, "af3_input.json"))
    assert sent["modelSeeds"] == [7, 8]
    first, second, ligand = sent["sequences"]
    assert first["protein"]["unpairedMsa"] == MSA
    assert second["protein"]["id"] == "B" and second["protein"]["unpairedMsa"] == ""
    assert ligand == {"ligand": {"id": "L", "smiles": "CC(=O)Oc1ccccc1C(=O)O"}}

    # Four samples (two seeds, two each), ranked by AlphaFold 3's ranking score; the best one's
    # figures are the job's metrics; AlphaFold 3's own folder is kept whole.
    record = f"job-{job.pk}"
    names = set(job.artifacts.values_list("name", flat=True))
    # AlphaFold 3 names its folder and files after the job's name, sanitised as it does.
    af3_name = "".join(
        c for c in f"{job.name} job {job.pk}".replace(" ", "_") if c.isascii() and
        (c.isalnum() or c in "_-.")
    )  # fmt: skip
    top = f"af3/{af3_name}/{af3_name}"
    ranked = [json.loads(artifact(job, f"confidence_{record}_model_{k}.json")) for k in range(4)]
    scores = [r["ranking_score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    summary = json.loads(artifact(job, f"{top}_summary_confidences.json"))
    assert summary["ranking_score"] == scores[0] == job.metrics["ranking_score"]["value"]
    assert job.metrics["ptm"]["value"] == summary["ptm"]
    assert job.metrics["iptm_A_b"]["value"] == summary["chain_pair_iptm"][0][1]
    assert f"{top}_ranking_scores.csv" in names and f"{top}_data.json" in names
    assert f"af3/{af3_name}/TERMS_OF_USE.md" in names
    assert len([n for n in names if n.endswith("_model.cif")]) == 5  # 4 samples and the best

    # The page and its API read them as a prediction's: chains by the scientist's names.
    api = client.session
    page = browser.get(f"/jobs/{job.pk}/").content.decode()
    assert f'data-record="{record}" data-engine="af3"' in page
    assert "ranked by its ranking score" in page
    pae = api.get(f"{client.url}/api/v1/jobs/{job.pk}/pae/?sample=1", timeout=30).json()
    assert [c["name"] for c in pae["chains"]] == ["A", "b", "L"]
    assert pae["size"] == 22 + 13 + 13  # residues, and the ligand's 13 heavy atoms
    plddt = api.get(f"{client.url}/api/v1/jobs/{job.pk}/plddt/?sample=0", timeout=30).json()
    assert len(plddt["values"]) == pae["size"] and all(0 < v <= 100 for v in plddt["values"])

    # The archive carries AlphaFold 3's input, its MSAs, its outputs and what ran it.
    archive = api.get(f"{client.url}/api/v1/jobs/{job.pk}/archive/", timeout=30)
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert "af3_input.json" in zf.namelist()
    engine = manifest["engine"]
    assert (engine["engine"], engine["af3_version"]) == ("alphafold3", "3.0.1")
    assert len(engine["model_dir_sha256"]) == 64 and engine["model_seeds"] == [7, 8]


def artifact(job, name: str) -> bytes:
    from django.core.files.storage import default_storage

    stored = job.artifacts.get(name=name)
    with default_storage.open(stored.storage_key, "rb") as f:
        return f.read()


@pytest.mark.django_db
@pytest.mark.database
def test_af3_is_refused_while_no_node_has_it_naming_the_settings(
    api, alice, project, make_node, boltz_cache, settings
):
    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])  # the portal's molecules
    make_node("plain", engines={"boltz": {"ready": True}})
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "af3",
            "params": {"input": {"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}]}},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "PORTAL_AF3_COMMAND" in response.json()["detail"]
    assert "PORTAL_AF3_MODEL_DIR" in response.json()["detail"]


def changed(change) -> dict:
    document = json.loads(json.dumps(AF3_INPUT))
    change(document)
    return document


@pytest.mark.django_db
@pytest.mark.database
@pytest.mark.parametrize(
    "document, refusal",
    [
        ("{not json", "Line 1, column 2: Expecting property name"),
        ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
        (
            [{"name": "server job", "sequences": []}],
            "this is AlphaFold Server's format (dialect alphafoldserver)",
        ),
        (changed(lambda d: d.update(dialect="boltz")), "dialect: must be 'alphafold3'"),
        (changed(lambda d: d.update(version=9)), "version: 9 is not one of"),
        (changed(lambda d: d.update(seeds=[1])), "seeds: AlphaFold 3's input has no such field"),
        (changed(lambda d: d.update(modelSeeds=[])), "modelSeeds: must be a non-empty list"),
        (
            changed(
                lambda d: d["sequences"][0]["protein"].update(unpairedMsaPath="/home/me/a.a3m")
            ),
            "entity 1 of sequences (protein A): unpairedMsaPath names a file on the machine the "
            "JSON was written on",
        ),
        (
            changed(lambda d: d["sequences"][1]["protein"].update(id=["B", "A"])),
            "entity 2 of sequences (protein B, A): chain id A is used twice",
        ),
        (
            changed(lambda d: d["sequences"][2]["ligand"].update(smiles="CCO")),
            "entity 3 of sequences (ligand D): give exactly one of ccdCodes or smiles",
        ),
        (
            changed(lambda d: d["sequences"][0]["protein"].update(unpairedMsa=">q\nMKV\n")),
            "the first sequence of its unpairedMsa is not the chain's sequence",
        ),
        (changed(lambda d: d["sequences"].append({"water": {}})), "must be one of protein"),
        (
            changed(lambda d: d["sequences"][0]["protein"].update(id="a")),
            "entity 1 of sequences (protein): its id must be upper-case letters, or a list of "
            "them, not 'a'.",
        ),
        (
            changed(lambda d: d["sequences"][1]["protein"].update(sequence="gshm")),
            "its sequence must be upper-case letters",
        ),
    ],
)
def test_alphafold3s_own_json_is_checked_at_submission(
    api, alice, project, boltz_cache, settings, document, refusal
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    text = document if isinstance(document, str) else json.dumps(document)
    response = api(alice).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile("input.json", text.encode())},
        format="multipart",
    )
    if response.status_code == 400:  # not JSON at all: refused as it arrives
        assert refusal in response.json()["detail"], response.json()
        return
    assert response.status_code == 201 and response.json()["kind"] == "json"
    submitted = api(alice).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "af3", "inputs": [response.json()["id"]]},
        format="json",
    )
    assert submitted.status_code == 400
    detail = submitted.json()["detail"]
    assert detail.startswith("input.json: ") and refusal in detail, detail


@pytest.mark.django_db
@pytest.mark.database
def test_alphafold3s_own_json_is_taken_given_once_and_only_by_af3(
    api, alice, project, boltz_cache, settings, make_node
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.PORTAL_BOLTZ_CACHE = str(boltz_cache["cache"])
    make_node(
        "alpha",
        gpus=[{"index": 0, "name": "made-up", "memory_total": 80 * 2**30}],
        engines={"af3": {"ready": True}, "boltz": {"ready": True}},
    )
    file = SimpleUploadedFile("complex.json", json.dumps(AF3_INPUT).encode())
    pk = (
        api(alice)
        .post("/api/v1/uploads/", {"project": project.pk, "file": file}, format="multipart")
        .json()["id"]
    )

    def submit(kind, **params):
        return api(alice).post(
            "/api/v1/jobs/",
            {"project": project.pk, "kind": kind, "inputs": [pk], "params": params},
            format="json",
        )

    twice = submit("af3", input={"sequences": [{"protein": {"id": "A", "sequence": "MKV"}}]})
    assert twice.status_code == 400 and "Give the input once" in twice.json()["detail"]
    assert submit("predict").status_code == 400  # Boltz takes its own YAML, not this
    job = submit("af3", model_seeds=[5, 6], num_diffusion_samples=1).json()
    assert job["params"]["model_seeds"] == [5, 6]  # the parameter over the file's seeds
    assert job["name"] == "complex" and job["warnings"] == []
    # 22 + 2 x 13 residues and ATP: small enough for a 16 GB card.
    assert Job.objects.get(pk=job["id"]).gpu_memory == 15 * 2**30


def test_a_node_has_af3_only_with_its_command_and_its_weights(tmp_path, monkeypatch):
    from nodes.probe import af3_info

    af3 = af3_dirs(tmp_path)
    for key, value in af3.items():
        monkeypatch.setenv(key, value)
    assert af3_info()["ready"] and af3_info()["version"] == "3.0.1"
    monkeypatch.setenv("PORTAL_AF3_COMMAND", "no-such-program --flag")
    assert af3_info()["fix"] == "PORTAL_AF3_COMMAND's program 'no-such-program' is not there"
    monkeypatch.setenv("PORTAL_AF3_COMMAND", COMMAND)
    monkeypatch.setenv("PORTAL_AF3_MODEL_DIR", str(tmp_path / "nothing"))
    assert af3_info()["fix"] == f"PORTAL_AF3_MODEL_DIR ({tmp_path / 'nothing'}) holds no weights"
    monkeypatch.delenv("PORTAL_AF3_COMMAND")
    assert not af3_info()["ready"]


@pytest.mark.parametrize(
    "change, refusal",
    [
        (lambda d: d["sequences"][0]["protein"].update(id="a"), "chain ids are uppercase"),
        (lambda d: d["sequences"][0]["protein"].pop("pairedMsa"), "pairedMsa must be set"),
        (lambda d: d.update(dialect="alphafold"), "Unsupported dialect"),
        (lambda d: d["sequences"].append({"ligand": {"id": "L"}}), "exactly one of ccdCodes"),
        (lambda d: d["sequences"][0]["protein"].update(msa=1), "Unexpected protein fields"),
        (
            lambda d: d["sequences"][0]["protein"].update(unpairedMsa=">x\nMKT\n"),
            "not the query sequence",
        ),
    ],
)
def test_the_standin_refuses_what_alphafold3_refuses(tmp_path, change, refusal):
    document = {
        "name": "job 1",
        "modelSeeds": [1],
        "dialect": "alphafold3",
        "version": 2,
        "sequences": [
            {
                "protein": {
                    "id": "A",
                    "sequence": "MKV",
                    "unpairedMsa": "",
                    "pairedMsa": "",
                    "templates": [],
                }
            }
        ],
    }
    change(document)
    (tmp_path / "in.json").write_text(json.dumps(document))
    (tmp_path / "weights").mkdir()
    done = subprocess.run(
        [
            sys.executable,
            str(STANDIN),
            f"--json_path={tmp_path / 'in.json'}",
            f"--output_dir={tmp_path / 'out'}",
            f"--model_dir={tmp_path / 'weights'}",
            "--norun_data_pipeline",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and refusal in done.stderr, done.stderr
