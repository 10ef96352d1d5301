import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from jobs.scheduler import sweep
from msa.services import cache_cleanup

log = logging.getLogger("jobs.scheduler")


class Command(BaseCommand):
    help = (
        "Run the scheduler's sweep every PORTAL_SCHEDULER_INTERVAL seconds: re-queue jobs of "
        "nodes that went offline or restarted, re-place what a broker lost, place queued jobs. "
        "Clean up the MSA cache at start and every PORTAL_MSA_CLEANUP_INTERVAL seconds."
    )

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        self.stdout.write(f"scheduler sweeping every {settings.PORTAL_SCHEDULER_INTERVAL} s")
        next_cleanup = time.monotonic()
        while not stop.is_set():
            close_old_connections()
            try:
                sweep()
            except Exception:
                # A database hiccup must not end the safety net; the next sweep tries again.
                log.exception("sweep failed")
            if time.monotonic() >= next_cleanup:
                next_cleanup = time.monotonic() + settings.PORTAL_MSA_CLEANUP_INTERVAL
                try:
                    cache_cleanup()
                except Exception:
                    log.exception("MSA cache clean-up failed")
            stop.wait(settings.PORTAL_SCHEDULER_INTERVAL)
