"""Settings for the test suite: the portal's own, with a work directory of its own."""

import os
from pathlib import Path

from tests.workers import worker_environment

# Tests run side by side in pytest-xdist's workers: each worker gets a work directory and Redis
# databases of its own (and pytest-django a test database of its own).
worker_environment(os.environ, Path(__file__).resolve().parent.parent / "var" / "test")
os.environ.setdefault("PORTAL_STATIC_FROM_SOURCES", "1")
os.environ.setdefault("PORTAL_JOB_KIND_MODULES", "tests.jobkinds")
# A job that ignores SIGTERM is killed this long after it: the tests that stop such jobs wait
# the grace out, and need only know that the kill follows.
os.environ.setdefault("PORTAL_JOB_KILL_GRACE", "0.5")
os.environ.setdefault("PORTAL_ENGINE_STOP_GRACE", "1")
# The jobs and engines the tests start in their own process take one core each, as those of the
# test nodes do (runnode --threads-per-slot 1): two test workers share two cores.
os.environ.setdefault("PORTAL_THREADS_PER_SLOT", "1")

from portal.settings import *  # noqa: E402,F403

# Hashing passwords slowly protects real accounts; in tests it only costs time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"user": "100000/min", "address": "100000/min"}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise looks there first)
