"""`affinity`: Boltz-2's affinity model on a complex a scientist has, on the slot's engine,
writing what boltz's own affinity pass writes (the tiny model of tests/boltzkit.py; boltz's
own calls for the reference)."""

import json

import pytest
import yaml
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.models import Job, State
from predictions.engine import prepare_input
from tests.boltzkit import boltz_affinity_alone
from tests.jobs.test_runner import place_and_run
from tests.predictions.test_complexes import cofold

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OPTIONS = {"sampling_steps_affinity": 10, "diffusion_samples_affinity": 1}


def upload(api, user, project, name, data: bytes) -> int:
    response = api(user).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile(name, data)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def submit(api, user, project, inputs, **params):
    return api(user).post(
        "/api/v1/jobs/",
        {"project": project.pk, "kind": "affinity", "inputs": inputs, "params": params},
        format="json",
    )


def artifact(job, name) -> bytes:
    return default_storage.open(job.artifacts.get(name=name).storage_key).read()


def test_the_affinity_of_a_complex_is_what_boltzs_affinity_pass_writes(
    boltz_node, boltz_cache, api, alice, project, enqueued, tmp_path
):
    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    complex_ = upload(api, alice, project, "complex.cif", (cli / "sez_model_0.cif").read_bytes())

    response = submit(api, alice, project, [complex_], ligand_residue="SEZ", seed=5, **OPTIONS)

    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    place_and_run(job, enqueued)
    assert job.state == State.SUCCEEDED, job.error
    record = f"job-{job.pk}"
    # boltz's own affinity pass, alone and seeded alike, on boltz's preparation of the job's
    # input and the structure the job made of the complex.
    work = tmp_path / "alone"
    (work / "predictions" / record).mkdir(parents=True)
    data = work / f"{record}.yaml"
    data.write_bytes(artifact(job, "input.yaml"))
    assert yaml.safe_load(data.read_text())["sequences"][1] == {"ligand": {"id": "B", "ccd": "SEZ"}}
    prepare_input(str(data), str(work), str(boltz_cache["cache"]), str(work / "said.log"))
    pre = work / "predictions" / record / f"pre_affinity_{record}.npz"
    pre.write_bytes(artifact(job, f"pre_affinity_{record}.npz"))
    boltz_affinity_alone(boltz_cache, work, seed=5, sampling_steps=10, diffusion_samples=1)
    expected = (work / "predictions" / record / f"affinity_{record}.json").read_bytes()
    assert artifact(job, f"affinity_{record}.json") == expected
    figures = json.loads(expected)
    assert job.metrics["affinity_pred_value"]["value"] == figures["affinity_pred_value"]
    assert f"{record}_complex.cif" in set(job.artifacts.values_list("name", flat=True))

    # The same complex and seed twice more (the engine replays the affinity model's draws,
    # then sets the states it kept for the seed): the same figures.
    for _ in range(2):
        again = api(alice).post(
            "/api/v1/jobs/",
            {
                "project": project.pk,
                "kind": "affinity",
                "inputs": [complex_],
                "params": {"ligand_residue": "SEZ", "seed": 5, **OPTIONS},
                "force": True,
            },
            format="json",
        )
        again = Job.objects.get(pk=again.json()["id"])
        place_and_run(again, enqueued)
        assert json.loads(artifact(again, f"affinity_job-{again.pk}.json")) == figures


TWO_D = (
    "ethanol\n  RDKit          2D\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n"
    "    0.0000    0.0000    0.0000 C   0  0\n    1.2990    0.7500    0.0000 C   0  0\n"
    "    2.5981   -0.0000    0.0000 O   0  0\n  1  2  1  0\n  2  3  1  0\nM  END\n$$$$\n"
)


@pytest.mark.parametrize(
    "files, params, said",
    [
        ([("complex.cif", None)], {"ligand_residue": "ATP"}, "complex.cif: no residue named 'ATP'"),
        ([("complex.cif", None)], {}, "Say which residue of the complex is the ligand"),
        (
            [("complex.cif", None), ("ethanol.sdf", TWO_D)],
            {"ligand_residue": "SEZ"},
            "`ligand_residue` names the ligand in a complex; here the ligand is a file.",
        ),
        ([("ethanol.sdf", TWO_D)], {}, "Give a complex (one PDB or mmCIF upload"),
    ],
)
def test_a_complex_the_kind_cannot_use_is_a_400_naming_it(
    boltz_node, boltz_cache, api, alice, project, tmp_path, files, params, said
):
    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    ids = [
        upload(
            api,
            alice,
            project,
            name,
            (cli / "sez_model_0.cif").read_bytes() if text is None else text.encode(),
        )
        for name, text in files
    ]
    response = submit(api, alice, project, ids, **params)
    assert response.status_code == 400, response.content
    assert said in json.dumps(response.json()), response.json()


def test_a_ligand_without_3d_coordinates_gets_them_from_rdkit_and_says_so(
    boltz_node, boltz_cache, api, alice, project, tmp_path
):
    from predictions import complexes

    (tmp_path / "ethanol.sdf").write_text(TWO_D)
    _, cli = cofold(boltz_cache, tmp_path, {"ccd": "SEZ"}, "sez")
    complex_ = complexes.read_complex(cli / "sez_model_0.cif", ligand=tmp_path / "ethanol.sdf")
    assert complex_.notes == [
        "ethanol.sdf has no 3D coordinates: RDKit made a conformer (not a pose)."
    ]
    assert complex_.mol.GetNumAtoms() == 3
    assert complex_.mol.GetConformer().Is3D()
