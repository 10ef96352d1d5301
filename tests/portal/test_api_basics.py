"""What every API answer shares: JSON errors with a code, rate limits, health, the schema."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from rest_framework.settings import api_settings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/health/", "/api/v1/health"])
def test_health_answers_without_authentication(client, path):
    response = client.get(path)
    assert response.status_code == 200  # not a redirect, with or without the slash
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["database"] == "ok"
    assert "SECRET" not in response.content.decode().upper()


def test_an_unknown_api_address_is_a_json_404(alice, api):
    response = api(alice).get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_missing_credential_is_a_json_401(client):
    response = client.get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json() == {
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
    }


def test_a_wrong_method_is_a_json_405(alice, api):
    response = api(alice).put("/api/v1/projects/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_validation_error_names_the_field(alice, api):
    response = api(alice).post("/api/v1/projects/", {}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith("name:")
    assert "name" in body["fields"]


def test_malformed_json_is_a_json_400(alice, api):
    response = api(alice).generic(
        "POST", "/api/v1/projects/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.fixture
def low_rates(monkeypatch):
    from portal import throttling

    rates = {"user": "3/min", "address": "5/min"}
    monkeypatch.setattr(throttling.UserThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(throttling.AddressThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield
    cache.clear()


def test_a_user_over_their_rate_gets_429_with_a_code(alice, api, low_rates):
    client = api(alice)
    codes = [client.get("/api/v1/projects/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    body = client.get("/api/v1/projects/").json()
    assert body["code"] == "throttled" and body["retry_after"] > 0


def test_one_address_is_limited_across_users(alice, bob, api, low_rates):
    codes = [api(user).get("/api/v1/projects/").status_code for user in [alice, bob] * 3]
    assert codes[:5] == [200] * 5
    assert codes[5] == 429


def test_the_openapi_schema_describes_the_api_and_its_token_scheme(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/uploads/", "/api/v1/projects/", "/api/v1/uploads/{id}/content"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["tokenAuth"]["name"] == "Authorization"


def test_the_docs_page_is_served_with_local_assets(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger-ui" in response.content
    assert b"cdn." not in response.content


def test_the_default_renderer_is_json_only():
    assert [r.media_type for r in api_settings.DEFAULT_RENDERER_CLASSES] == ["application/json"]


@pytest.mark.slow
def test_requests_for_the_schema_at_once_on_a_new_server_all_get_it(portal_server):
    import requests

    def get(_):
        return requests.get(f"{portal_server.url}/api/v1/schema/", timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(get, range(4))) == [200] * 4
