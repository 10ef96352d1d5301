"""`manage.py seed_demo`: the admin account and a demo project, once."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from portal.projects.models import Project

pytestmark = pytest.mark.django_db


def seed(**options) -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, **options)
    return out.getvalue()


def test_seed_demo_makes_the_admin_and_a_project_once(monkeypatch):
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "demo-password-1")
    first = seed(url="http://portal.test/")
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("demo-password-1")
    assert "Made the account 'admin' with the password: demo-password-1" in first
    assert "Sign in at http://portal.test/ as 'admin'." in first
    assert Project.objects.filter(name="Demo project", memberships__user=admin).count() == 1

    again = seed()
    assert "The account 'admin' exists" in again and "password:" not in again
    assert Project.objects.filter(name="Demo project").count() == 1
