from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import ApiToken
from portal.accounts.services import token_create

pytestmark = pytest.mark.django_db


def client_with(key, scheme="Token"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


def test_createtoken_prints_only_the_key_and_the_key_works(alice):
    out = StringIO()
    call_command("createtoken", "alice", "--name", "pipeline", stdout=out)
    key = out.getvalue().strip()
    assert "\n" not in key and " " not in key
    assert client_with(key).get("/api/v1/projects/").status_code == 200
    assert ApiToken.objects.get(user=alice).name == "pipeline"


def test_a_token_is_accepted_as_a_bearer_token_too(alice):
    _, key = token_create(user=alice, name="httpie")
    assert client_with(key, "Bearer").get("/api/v1/projects/").status_code == 200
    assert client_with(key, "bearer").get("/api/v1/projects/").status_code == 200
    refused = client_with("spt_not-a-token", "Bearer").get("/api/v1/projects/")
    assert refused.status_code == 401
    assert "unknown, revoked or expired" in refused.json()["detail"]
    half = APIClient()
    half.credentials(HTTP_AUTHORIZATION="Bearer")
    response = half.get("/api/v1/projects/")
    assert response.status_code == 401
    assert "'Authorization: Bearer <key>'" in response.json()["detail"]


def test_createtoken_refuses_an_unknown_user(db):
    with pytest.raises(Exception, match="no active user 'nobody'"):
        call_command("createtoken", "nobody", stdout=StringIO())


def test_a_user_holds_several_named_tokens_made_through_the_api(alice, api):
    client = api(alice)
    first = client.post("/api/v1/tokens/", {"name": "laptop"}, format="json")
    second = client.post("/api/v1/tokens/", {"name": "cluster"}, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json()["key"] != second.json()["key"]
    listed = client.get("/api/v1/tokens/").json()
    assert {t["name"] for t in listed} == {"tests", "laptop", "cluster"}
    assert all("key" not in t for t in listed)


def test_a_revoked_token_no_longer_authenticates(alice, api):
    token, key = token_create(user=alice, name="old")
    assert client_with(key).get("/api/v1/projects/").status_code == 200
    assert api(alice).delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    response = client_with(key).get("/api/v1/projects/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_an_expired_token_no_longer_authenticates(alice):
    token, key = token_create(
        user=alice, name="short", expires_at=timezone.now() + timedelta(hours=1)
    )
    assert client_with(key).get("/api/v1/projects/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_with(key).get("/api/v1/projects/").status_code == 401


def test_an_expiry_in_the_past_is_refused(alice, api):
    response = api(alice).post(
        "/api/v1/tokens/", {"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "token_expiry_past"


def test_using_a_token_records_when_it_was_last_used(alice):
    token, key = token_create(user=alice, name="t")
    assert token.last_used_at is None
    client_with(key).get("/api/v1/projects/")
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_nobody_can_revoke_someone_elses_token(alice, charlie, api):
    token, _ = token_create(user=alice, name="mine")
    assert api(charlie).delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_malformed_authorization_header_gets_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token")
    assert client.get("/api/v1/projects/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token spt_nope")
    assert client.get("/api/v1/projects/").status_code == 401


def test_the_database_holds_no_token_in_plain_text(alice, client):
    keys = []
    out = StringIO()
    call_command("createtoken", "alice", stdout=out)
    keys.append(out.getvalue().strip())
    keys.append(token_create(user=alice, name="service")[1])
    client.force_login(alice)
    page = client.post("/accounts/tokens/", {"name": "from the page"})
    keys.append(page.context["new_key"])
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    for key in keys:
        assert key not in dump.getvalue()
        assert key[len("spt_") :] not in dump.getvalue()
    assert ApiToken.objects.count() == 3


def test_the_tokens_page_shows_a_new_key_once(alice, client):
    client.force_login(alice)
    made = client.post("/accounts/tokens/", {"name": "notebook"})
    key = made.context["new_key"]
    assert key.encode() in made.content
    again = client.get("/accounts/tokens/")
    assert key.encode() not in again.content
    assert b"notebook" in again.content
