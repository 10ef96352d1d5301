"""Why an MSA could not be had, and how a search waits while it can still be stopped."""

import threading
import time


class MsaError(Exception):
    """An MSA could not be had; the message says why, for the job's reason."""


class MsaStopped(MsaError):
    """The search was asked to stop (its job was cancelled or ran out of time): not a reason
    for the jobs waiting on the same search to fail; one of them takes it over."""


def pause(seconds: float, stop: threading.Event | None) -> None:
    """Sleep, unless asked to stop meanwhile."""
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise MsaStopped("The MSA search was stopped.")
