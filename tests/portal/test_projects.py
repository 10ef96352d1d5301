import pytest

from portal.projects.models import Membership, Role

pytestmark = pytest.mark.django_db


def test_the_creator_of_a_project_owns_it(alice, api):
    response = api(alice).post("/api/v1/projects/", {"name": "Kinases"}, format="json")
    assert response.status_code == 201
    assert response.json()["my_role"] == "owner"
    assert Membership.objects.get(project_id=response.json()["id"], user=alice).role == Role.OWNER


def test_a_user_lists_only_the_projects_they_belong_to(project, alice, bob, charlie, api):
    api(charlie).post("/api/v1/projects/", {"name": "Charlie's"}, format="json")
    assert [p["name"] for p in api(alice).get("/api/v1/projects/").json()["results"]] == [
        "Alice's lab"
    ]
    assert [p["my_role"] for p in api(bob).get("/api/v1/projects/").json()["results"]] == ["viewer"]
    assert [p["name"] for p in api(charlie).get("/api/v1/projects/").json()["results"]] == [
        "Charlie's"
    ]


def test_an_outsider_gets_404_for_a_project(project, charlie, api):
    response = api(charlie).get(f"/api/v1/projects/{project.pk}/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such project."}
    assert api(charlie).patch(f"/api/v1/projects/{project.pk}/", {"name": "x"}).status_code == 404
    assert api(charlie).delete(f"/api/v1/projects/{project.pk}/").status_code == 404


def test_a_viewer_cannot_rename_or_delete(project, bob, api):
    response = api(bob).patch(f"/api/v1/projects/{project.pk}/", {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert api(bob).delete(f"/api/v1/projects/{project.pk}/").status_code == 403
    project.refresh_from_db()
    assert project.name == "Alice's lab"


def test_an_editor_renames_but_only_an_owner_deletes(project, erin, alice, api):
    assert (
        api(erin)
        .patch(f"/api/v1/projects/{project.pk}/", {"name": "Renamed"}, format="json")
        .status_code
        == 200
    )
    assert api(erin).delete(f"/api/v1/projects/{project.pk}/").status_code == 403
    assert api(alice).delete(f"/api/v1/projects/{project.pk}/").status_code == 204


def test_an_owner_adds_a_member_and_the_member_then_sees_the_project(project, alice, charlie, api):
    response = api(alice).post(
        "/api/v1/memberships/",
        {"project": project.pk, "username": "charlie", "role": "editor"},
        format="json",
    )
    assert response.status_code == 201
    assert api(charlie).get(f"/api/v1/projects/{project.pk}/").json()["my_role"] == "editor"


def test_only_an_owner_adds_members(project, erin, api):
    response = api(erin).post(
        "/api/v1/memberships/",
        {"project": project.pk, "username": "charlie", "role": "owner"},
        format="json",
    )
    assert response.status_code == 403


def test_an_outsider_cannot_add_themselves(project, charlie, api):
    response = api(charlie).post(
        "/api/v1/memberships/",
        {"project": project.pk, "username": "charlie", "role": "owner"},
        format="json",
    )
    assert response.status_code == 404
    assert not Membership.objects.filter(project=project, user=charlie).exists()


def test_adding_an_unknown_user_is_a_clear_error(project, alice, api):
    response = api(alice).post(
        "/api/v1/memberships/",
        {"project": project.pk, "username": "nobody", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "user_unknown",
        "detail": "There is no active user 'nobody'.",
    }


def test_members_are_listed_per_project_to_members_only(project, bob, charlie, api):
    names = {
        m["username"]
        for m in api(bob).get(f"/api/v1/memberships/?project={project.pk}").json()["results"]
    }
    assert names == {"alice", "bob", "erin"}
    assert api(charlie).get(f"/api/v1/memberships/?project={project.pk}").status_code == 404
    assert api(charlie).get("/api/v1/memberships/").json()["results"] == []


def test_a_project_keeps_its_last_owner(project, alice, api):
    owner = Membership.objects.get(project=project, user=alice)
    response = api(alice).patch(
        f"/api/v1/memberships/{owner.pk}/", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "last_owner"
    assert api(alice).delete(f"/api/v1/memberships/{owner.pk}/").status_code == 400


def test_a_member_may_leave_but_not_remove_others(project, bob, erin, api):
    erins = Membership.objects.get(project=project, user=erin)
    bobs = Membership.objects.get(project=project, user=bob)
    assert api(bob).delete(f"/api/v1/memberships/{erins.pk}/").status_code == 403
    assert api(bob).delete(f"/api/v1/memberships/{bobs.pk}/").status_code == 204
    assert api(bob).get(f"/api/v1/projects/{project.pk}/").status_code == 404


def test_the_project_pages_show_members_and_hide_other_projects(project, alice, charlie, client):
    client.force_login(alice)
    page = client.get(f"/projects/{project.pk}/")
    assert page.status_code == 200
    assert b"erin" in page.content
    client.force_login(charlie)
    assert client.get(f"/projects/{project.pk}/").status_code == 404
    assert b"Alice&#x27;s lab" not in client.get("/projects/").content


def test_an_owner_adds_a_member_from_the_project_page(project, alice, charlie, client):
    client.force_login(alice)
    response = client.post(f"/projects/{project.pk}/", {"username": "charlie", "role": "viewer"})
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=charlie).role == Role.VIEWER


def test_a_viewer_cannot_add_members_from_the_page(project, bob, client):
    client.force_login(bob)
    response = client.post(f"/projects/{project.pk}/", {"username": "charlie", "role": "owner"})
    assert response.status_code == 403
