"""A portal whose nodes have no Boltz-2 weights says so before a scientist fills a form: on the
dashboard, the new-job page and the prediction form (closed), with what an operator does."""

import pytest

pytestmark = pytest.mark.django_db

SAID = "No node of this portal has the Boltz-2 weights: an operator runs `manage.py boltzweights`"


def test_without_weights_the_pages_say_so_and_the_form_is_closed(client, alice, project, make_node):
    make_node(engines={"torch": {"ready": True}, "boltz": {"ready": False}})
    client.force_login(alice)
    dashboard = client.get("/").content.decode()
    assert 'id="unavailable"' in dashboard and SAID in dashboard
    assert "Predict a structure (Boltz-2)</strong> cannot run now" in dashboard
    assert "Design" in dashboard  # a campaign's candidates are predictions
    new = client.get(f"/projects/{project.pk}/jobs/new/").content.decode()
    assert f"cannot run now: {SAID}" in new
    form = client.get(f"/projects/{project.pk}/jobs/new/predict/").content.decode()
    assert 'id="unavailable"' in form and SAID in form
    assert '<button type="submit" disabled>Predict</button>' in form


def test_with_weights_nothing_is_said_and_the_form_is_open(client, alice, project, make_node):
    make_node(engines={"torch": {"ready": True}, "boltz": {"ready": True}})
    client.force_login(alice)
    assert 'id="unavailable"' not in client.get("/").content.decode()
    form = client.get(f"/projects/{project.pk}/jobs/new/predict/").content.decode()
    assert 'id="unavailable"' not in form and '<button type="submit">Predict</button>' in form
