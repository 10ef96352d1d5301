import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from portal.projects.models import Project
from portal.projects.services import project_create

DEMO_PROJECT = "Demo project"


class Command(BaseCommand):
    help = "Make the admin account and a demo project if they are missing; say how to sign in."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, username, url, **options):
        User = get_user_model()
        admin = User.objects.filter(username=username).first()
        if admin is None:
            # A password from the environment, else a fresh one printed this once: nothing
            # stores it in plain text.
            password = os.environ.get("PORTAL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            admin = User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Made the account '{username}' with the password: {password}\n"
                    "  (shown this once; change it with: "
                    f".venv/bin/python manage.py changepassword {username})"
                )
            )
        else:
            self.stdout.write(
                f"The account '{username}' exists; forgot its password? "
                f".venv/bin/python manage.py changepassword {username}"
            )
        if not Project.objects.filter(name=DEMO_PROJECT, memberships__user=admin).exists():
            project_create(
                name=DEMO_PROJECT,
                by=admin,
                description="A project to try the portal with: upload a file, run a job.",
            )
            self.stdout.write(f"Made '{DEMO_PROJECT}', owned by {username}.")
        self.stdout.write(f"Sign in at {url} as '{username}'.")
