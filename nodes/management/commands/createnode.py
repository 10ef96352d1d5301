from django.core.management.base import BaseCommand, CommandError

from nodes.services import node_create
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Register a node and print its token (only the token, once; only a hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--queue", default="", help="its Django-Q2 queue (node-NAME)")
        parser.add_argument(
            "--cpu-slots", type=int, default=1, help="jobs it runs at once beside its GPUs"
        )

    def handle(self, *args, name, queue, cpu_slots, **options):
        try:
            _, token = node_create(name=name, queue=queue, cpu_slots=cpu_slots)
        except PortalError as exc:
            raise CommandError(str(exc.detail)) from None
        self.stdout.write(token)
