from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.accounts.services import token_create


class Command(BaseCommand):
    help = "Make an API token for a user and print its key (only the key, for scripts)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"There is no active user '{username}'.")
        _, key = token_create(user=user, name=name)
        self.stdout.write(key)
