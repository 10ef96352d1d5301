"""Each kind declares its parameters once: the API validates them, the schema shows them and the
new-job page builds its form from them."""

import pytest
import yaml

from jobs.kinds import registry
from jobs.models import Job

pytestmark = pytest.mark.django_db


def kinds_with_params():
    return [name for name, kind in sorted(registry().items()) if kind.Params().fields]


@pytest.mark.parametrize("name", kinds_with_params())
def test_the_api_refuses_a_bad_parameter_of_each_kind_naming_it(project, alice, api, name):
    field = next(iter(registry()[name].Params().fields))
    for params, named in [({field: {"not": "this"}}, field), ({"colour": "blue"}, "colour")]:
        response = api(alice).post(
            "/api/v1/jobs/", {"project": project.pk, "kind": name, "params": params}, format="json"
        )
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "params_invalid"
        assert body["detail"].startswith(f"params.{named}: ")
        assert named in body["fields"]["params"]
    assert not Job.objects.exists()


def test_the_schema_shows_each_kinds_parameters(alice, client):
    client.force_login(alice)
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    components = schema["components"]["schemas"]
    submission = components["JobSubmissionRequest"]
    assert submission["discriminator"]["propertyName"] == "kind"
    mapping = submission["discriminator"]["mapping"]
    assert set(mapping) == set(registry())
    train = components[mapping["train"].rsplit("/", 1)[-1]]
    params = components[train["properties"]["params"]["$ref"].rsplit("/", 1)[-1]]
    assert params["properties"]["epochs"] == {
        "type": "integer",
        "maximum": 500,
        "minimum": 1,
        "default": 10,
    }
    assert set(params["properties"]) == set(registry()["train"].Params().fields)


def test_the_new_job_page_builds_each_kinds_form_from_its_parameters(client, alice, project):
    client.force_login(alice)
    chooser = client.get(f"/projects/{project.pk}/jobs/new/").content.decode()
    for name in registry():
        assert f"/projects/{project.pk}/jobs/new/{name}/" in chooser
    page = client.get(f"/projects/{project.pk}/jobs/new/check/").content.decode()
    assert 'name="sleep"' in page and 'max="3600"' in page
    response = client.post(
        f"/projects/{project.pk}/jobs/new/check/", {"sleep": "5", "priority": "high"}
    )
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert (job.kind, job.params, job.priority_name) == ("check", {"sleep": 5.0}, "high")
    refused = client.post(f"/projects/{project.pk}/jobs/new/check/", {"sleep": "9999"})
    assert refused.status_code == 200 and b"less than or equal to 3600" in refused.content
    assert Job.objects.count() == 1
    assert client.get(f"/projects/{project.pk}/jobs/new/fold-all/").status_code == 404


def test_a_list_parameter_is_typed_as_json_and_what_is_wrong_in_it_is_said_once(
    client, alice, project
):
    client.force_login(alice)
    page = client.post(
        f"/projects/{project.pk}/jobs/new/msa/",
        {"source": "server", "chains": '[{"sequence": "MKV"}]', "priority": "normal"},
    ).content.decode()
    assert page.count("id: This field is required.") == 1
    assert "ErrorDetail" not in page
    page = client.post(
        f"/projects/{project.pk}/jobs/new/msa/",
        {"source": "server", "chains": "MKV", "priority": "normal"},
    ).content.decode()
    assert page.count("Enter a valid JSON.") == 1
