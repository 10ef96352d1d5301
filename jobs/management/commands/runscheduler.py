import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from jobs import periodic
from jobs.scheduler import sweep

log = logging.getLogger("jobs.scheduler")


class Command(BaseCommand):
    help = (
        "Run the scheduler's sweep every PORTAL_SCHEDULER_INTERVAL seconds: re-queue jobs of "
        "nodes that went offline or restarted, re-place what a broker lost, place queued jobs; "
        "and what other apps registered to run now and then (jobs/periodic.py), each at its "
        "own interval."
    )

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(f"scheduler sweeping every {settings.PORTAL_SCHEDULER_INTERVAL} s")
        while not stop.is_set():
            close_old_connections()
            try:
                sweep()
            except Exception:
                # A database hiccup must not end the safety net; the next sweep tries again.
                log.exception("sweep failed")
            periodic.run_due()
            stop.wait(settings.PORTAL_SCHEDULER_INTERVAL)
