"""A prediction's input as a scientist brings it: boltz's own FASTA (SMILES and CCD records
included), a plain multi-FASTA as one complex or one prediction per record, and what the
portal says of a CCD code its molecules lack or a letter boltz reads as unknown."""

import pytest

from jobs.models import Job
from tests.predictions.test_predict import FAST, submit, upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

PLAIN = (
    ">ubiquitin human\nMQIFVKTLTGKTITLEVEPS\n"
    ">sumo1\nMSDQEAKPSTEDLGDKKEG\n"
    ">nedd8\nMLIKVKTLTGKEIEIDIEPT\n"
)


def test_boltz_fasta_with_smiles_and_ccd_records_is_a_prediction_input(
    boltz_node, api, alice, project
):
    fasta = (
        ">A|protein\nMKTAYIAKQRQISFVKSHFSRQ\n>B|smiles\nN[C@@H](Cc1ccc(O)cc1)C(=O)O\n>C|ccd\nSEZ\n"
    )
    response = submit(
        api, alice, project, upload(api, alice, project, "ligand.fasta", fasta), **FAST
    )
    assert response.status_code == 201, response.content
    assert Job.objects.get(pk=response.json()["id"]).params["input"]["sequences"] == [
        {"protein": {"id": "A", "sequence": "MKTAYIAKQRQISFVKSHFSRQ"}},
        {"ligand": {"id": "B", "smiles": "N[C@@H](Cc1ccc(O)cc1)C(=O)O"}},
        {"ligand": {"id": "C", "ccd": "SEZ"}},
    ]


def test_an_msa_path_in_a_fasta_header_is_refused_as_in_a_yaml(boltz_node, api, alice, project):
    fasta = ">A|protein|./msa/seq1.a3m\nMKTAYIAKQRQISFVKSHFSRQ\n"
    response = submit(api, alice, project, upload(api, alice, project, "msa.fasta", fasta))
    assert response.status_code == 400
    assert (
        "Entity 1 (protein A): `msa` is `empty` (single sequence) or the id of an A3M or CSV "
        "upload of this project, not a path" in response.content.decode()
    )


def test_a_plain_fasta_is_one_complex_or_one_prediction_per_record(boltz_node, api, alice, project):
    seqs = upload(api, alice, project, "seqs.fasta", PLAIN)
    complex_ = submit(api, alice, project, seqs, **FAST)
    assert complex_.status_code == 201, complex_.content
    chains = Job.objects.get(pk=complex_.json()["id"]).params["input"]["sequences"]
    assert [entity["protein"]["id"] for entity in chains] == ["A", "B", "C"]

    each = submit(api, alice, project, seqs, per_record=True, **FAST)
    assert each.status_code == 201, each.content
    jobs = [Job.objects.get(pk=job["id"]) for job in each.json()["results"]]
    assert [job.name for job in jobs] == ["seqs ubiquitin", "seqs sumo1", "seqs nedd8"]
    assert [job.params["input"]["sequences"] for job in jobs] == [
        [{"protein": {"id": "A", "sequence": sequence}}]
        for sequence in ("MQIFVKTLTGKTITLEVEPS", "MSDQEAKPSTEDLGDKKEG", "MLIKVKTLTGKEIEIDIEPT")
    ]
    assert all(job.params["per_record"] is False for job in jobs)


def test_one_prediction_per_record_refuses_entities_tied_together(boltz_node, api, alice, project):
    document = {
        "sequences": [
            {"protein": {"id": "A", "sequence": "MKTAYIAKQR"}},
            {"ligand": {"id": "B", "smiles": "CCO"}},
        ],
        "properties": [{"affinity": {"binder": "B"}}],
    }
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "predict",
            "params": {"input": document, "per_record": True},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "this input's properties tie its entities together" in response.content.decode()


def test_a_ccd_code_the_molecules_lack_is_named_with_its_entity(boltz_node, api, alice, project):
    fasta = ">A|protein\nMKTAYIAKQRQISFVKSHFSRQ\n>B|smiles\nCCO\n>C|ccd\nSAH\n"
    response = submit(api, alice, project, upload(api, alice, project, "sah.fasta", fasta))
    assert response.status_code == 400
    assert (
        "Entity 3 (ligand C): CCD code SAH: this portal's molecules lack it"
        in response.content.decode()
    )


def test_a_letter_boltz_reads_as_unknown_is_accepted_with_a_warning(
    boltz_node, api, alice, project, client
):
    fasta = ">A|protein\nMKTAJIAKQRQBSFVKSHFSRQ\n"
    response = submit(api, alice, project, upload(api, alice, project, "j.fasta", fasta), **FAST)
    assert response.status_code == 201, response.content
    (warning,) = response.json()["warnings"]
    assert warning.startswith("Entity 1 (protein A): J at 5, B at 12: boltz reads B, J, O, U")
    client.force_login(alice)
    page = client.get(f"/jobs/{response.json()['id']}/").content.decode()
    assert 'id="job-warnings"' in page and "J at 5, B at 12" in page


def test_one_prediction_per_record_of_nothing_is_a_400(boltz_node, api, alice, project):
    response = api(alice).post(
        "/api/v1/jobs/",
        {
            "project": project.pk,
            "kind": "predict",
            "params": {"input": {"sequences": []}, "per_record": True},
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "no records" in response.content.decode()
