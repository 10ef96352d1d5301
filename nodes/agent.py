"""The node agent: registers the node with the portal and reports it every heartbeat."""

import logging
import socket
import threading
import time

import requests
from django.conf import settings

from nodes import probe
from nodes.models import MAX_LANES

log = logging.getLogger("nodes.agent")


class AgentRefused(Exception):
    """The portal does not know this node's token."""


def lanes_per_gpu(setting: str) -> int:
    """How many jobs one GPU may run at once, from `--jobs-per-gpu` / PORTAL_JOBS_PER_GPU:
    `auto` (PORTAL_LANES_AUTO lanes; their jobs' memory estimates decide how many run) or a
    number from 1 to MAX_LANES. Anything else is a ValueError saying what is accepted."""
    text = str(setting).strip().lower()
    if text == "auto":
        return settings.PORTAL_LANES_AUTO
    if text.isdigit() and 1 <= int(text) <= MAX_LANES:
        return int(text)
    raise ValueError(f"jobs per GPU is `auto` or a number from 1 to {MAX_LANES}, not {setting!r}")


class Agent:
    def __init__(self, portal_url: str, token: str, boot_id: str, name: str):
        self.url = portal_url.rstrip("/") + "/api/v1/nodes/heartbeat/"
        self.token = token
        self.boot_id = boot_id
        # Where this node's resident engines keep their status files (jobs/engine_server.py).
        self.engines_dir = settings.WORKDIR / "engines" / name
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Node {token}"
        # torch and CUDA are asked once (that takes seconds), and only where NVIDIA GPUs are:
        # without them CUDA cannot work. Weights may appear any time and are looked for at
        # every beat.
        self._torch = probe.torch_info(check_cuda=bool(probe.gpu_snapshot()))

    def report(self) -> dict:
        return {
            "boot_id": self.boot_id,
            "hostname": socket.gethostname(),
            "gpus": probe.gpu_snapshot(),
            "lanes_per_gpu": lanes_per_gpu(settings.PORTAL_JOBS_PER_GPU),
            **{k: v for k, v in probe.system_snapshot().items() if k != "cpu_count"},
            "engines": {
                "torch": self._torch,
                "boltz": probe.boltz_info(),
                "msa_local": probe.msa_local_info(),
                "msa_server": probe.msa_server_info(),
                "af3": probe.af3_info(),
            },
            "warm_engines": probe.warm_engine_report(self.engines_dir),
        }

    def beat(self) -> dict:
        """Send one heartbeat; returns what the portal says of this node."""
        response = self.session.post(self.url, json=self.report(), timeout=20)
        if response.status_code == 401:
            raise AgentRefused(response.json().get("detail", "unknown node token"))
        response.raise_for_status()
        return response.json()

    def run(self, interval: float, stop: threading.Event, on_config=None) -> None:
        """Beat every `interval` seconds until `stop` is set; network trouble is retried."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                config = self.beat()
                if on_config is not None:
                    on_config(config)
            except AgentRefused:
                raise
            except (requests.RequestException, ValueError) as exc:
                log.warning("heartbeat failed, retrying: %s", exc)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
