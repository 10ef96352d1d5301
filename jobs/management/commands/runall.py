import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from nodes import probe
from nodes.models import Node
from nodes.services import node_create, node_rotate_token

LOCAL_NODE = "local"


class Command(BaseCommand):
    help = (
        "The embedded portal on one machine: the web server, the scheduler, and this machine "
        "as a node (its GPUs if it has any, else CPU slots). `make run` runs this."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--cpu-slots", type=int, default=1, help="CPU jobs this machine runs at once"
        )

    def handle(self, *args, host, port, cpu_slots, **options):
        node = Node.objects.filter(name=LOCAL_NODE).first()
        if node is None:
            node, token = node_create(name=LOCAL_NODE, cpu_slots=cpu_slots)
        else:
            # A fresh token each start, handed to the node process only: none is kept anywhere.
            token = node_rotate_token(node=node)
        # What this machine cannot run yet, and the fix, said before the portal serves.
        for name, engine in sorted(probe.engines(check_cuda=False).items()):
            if not engine.get("ready") and engine.get("fix"):
                self.stdout.write(f"This machine's {name} is not ready: {engine['fix']}.")
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        url = f"http://{host}:{port}"
        children = [
            subprocess.Popen([*manage, "serve", "--host", host, "--port", str(port)]),
            subprocess.Popen([*manage, "runscheduler"]),
            subprocess.Popen(
                [*manage, "runnode", LOCAL_NODE, "--portal", url],
                env={**os.environ, "PORTAL_NODE_TOKEN": token},
            ),
        ]
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping:
                if any(child.poll() is not None for child in children):
                    self.stderr.write("a part of the portal exited; stopping the rest")
                    break
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
