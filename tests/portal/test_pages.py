import pytest

pytestmark = pytest.mark.django_db


def test_signing_in_leads_to_the_dashboard_and_signing_out_back(client, alice, project):
    page = client.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    signed_in = client.post(
        "/accounts/login/", {"username": "alice", "password": "alice-password"}, follow=True
    )
    assert signed_in.request["PATH_INFO"] == "/"
    assert b"Alice&#x27;s lab" in signed_in.content
    signed_out = client.post("/accounts/logout/", follow=True)
    assert signed_out.request["PATH_INFO"] == "/accounts/login/"
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_told_and_signs_nobody_in(client, alice):
    page = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert page.status_code == 200
    assert b"did not match" in page.content
    assert client.get("/").status_code == 302


def test_a_project_made_on_the_page_belongs_to_its_maker(client, alice):
    client.force_login(alice)
    response = client.post("/projects/", {"name": "Antibodies"}, follow=True)
    assert b"Antibodies" in response.content
    assert b"Your role: owner" in response.content


def test_an_unknown_page_is_a_page_not_json(client, alice):
    client.force_login(alice)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"<html" in response.content


def test_names_from_users_are_escaped(client, alice):
    client.force_login(alice)
    client.post("/projects/", {"name": "<script>alert(1)</script>"})
    page = client.get("/projects/")
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;" in page.content
