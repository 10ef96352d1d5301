import logging
import os
import signal
import subprocess
import sys
import threading
import uuid

import psutil
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from nodes.agent import Agent, AgentRefused, lanes_per_gpu

log = logging.getLogger("nodes.runnode")


class Command(BaseCommand):
    help = (
        "Run this machine as a node of the portal: an agent that registers it and sends "
        "heartbeats, and a Django-Q2 cluster that runs the jobs placed on its queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--token",
            default=os.environ.get("PORTAL_NODE_TOKEN", ""),
            help="the token createnode printed (or PORTAL_NODE_TOKEN)",
        )
        parser.add_argument("--portal", required=True, help="the portal's URL")
        parser.add_argument("--workers", type=int, default=0, help="default: the node's slots + 1")
        parser.add_argument(
            "--jobs-per-gpu",
            default=None,
            help="how many jobs one GPU runs at once: `auto` (as many as their memory estimates "
            "fit, up to 8; only predictions and affinity jobs share a GPU) or a number (1: a "
            "job has its GPU to itself); default PORTAL_JOBS_PER_GPU, else auto",
        )
        parser.add_argument(
            "--threads-per-slot",
            type=int,
            default=None,
            help="CPU threads each job and engine may use (default: the host's cores divided "
            "by the node's GPUs and CPU slots; 0: no limit)",
        )

    def handle(
        self, *args, name, token, portal, workers, jobs_per_gpu, threads_per_slot, **options
    ):
        if not token:
            raise CommandError("Give the node's token: --token or PORTAL_NODE_TOKEN.")
        if jobs_per_gpu is not None:
            settings.PORTAL_JOBS_PER_GPU = jobs_per_gpu
        try:
            lanes = lanes_per_gpu(settings.PORTAL_JOBS_PER_GPU)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())

        agent = Agent(portal, token, uuid.uuid4().hex, name)
        config = self.register(agent)
        if config["name"] != name:
            raise CommandError(f"That token belongs to node '{config['name']}', not '{name}'.")
        self.workers = workers or config["slots"] + 1
        if threads_per_slot is None:
            # A GPU's lanes share its part of the cores, as one slot would (their jobs' work is
            # on the GPU).
            places = (config["slots"] - config["cpu_slots"]) // lanes + config["cpu_slots"]
            threads_per_slot = max(1, (psutil.cpu_count() or 1) // max(1, places))
        self.threads = threads_per_slot
        sharing = "auto" if str(settings.PORTAL_JOBS_PER_GPU).lower() == "auto" else lanes
        self.stdout.write(
            f"node {name}: queue {config['queue']}, {config['slots']} slot(s) "
            f"(jobs per GPU: {sharing}), {self.workers} worker(s), "
            f"{self.threads or 'unlimited'} CPU thread(s) per slot; portal {portal}"
        )
        cluster = self.start_cluster(name, config["queue"], agent.boot_id)
        beats = threading.Thread(
            target=self.heartbeats, args=(agent,), name="heartbeats", daemon=True
        )
        beats.start()
        try:
            while not self.stop.wait(1.0):
                if cluster.poll() is not None:
                    # The runners died with it: a new boot id tells the portal so, and it
                    # re-queues what they were running.
                    log.error("the task cluster exited (%s); starting it again", cluster.returncode)
                    agent.boot_id = uuid.uuid4().hex
                    cluster = self.start_cluster(name, config["queue"], agent.boot_id)
        finally:
            self.stop.set()
            self.stop_cluster(cluster)

    def register(self, agent: Agent) -> dict:
        while not self.stop.is_set():
            try:
                return agent.beat()
            except AgentRefused as exc:
                raise CommandError(f"The portal refused this node: {exc}") from None
            except (requests.RequestException, ValueError) as exc:
                log.warning("cannot reach the portal yet (%s); retrying", exc)
                self.stop.wait(2.0)
        raise CommandError("stopped before the node could register")

    def heartbeats(self, agent: Agent) -> None:
        try:
            agent.run(settings.PORTAL_HEARTBEAT_INTERVAL, self.stop)
        except AgentRefused as exc:
            log.error("the portal no longer accepts this node's token: %s", exc)
            self.stop.set()

    def start_cluster(self, name: str, queue: str, boot_id: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "Q_CLUSTER_NAME": queue,
            "PORTAL_Q_WORKERS": str(self.workers),
            "PORTAL_NODE_NAME": name,
            "PORTAL_NODE_BOOT_ID": boot_id,
            "PORTAL_NODE_PID": str(os.getpid()),
            "PORTAL_THREADS_PER_SLOT": str(self.threads),
        }
        env.pop("PORTAL_NODE_TOKEN", None)
        return subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
        )

    def stop_cluster(self, cluster: subprocess.Popen) -> None:
        """Stop the cluster and whatever it still runs. Jobs are not waited for: the portal
        re-queues them when this node's next start reports a new boot id, or when its
        heartbeats stop."""
        if cluster.poll() is not None:
            return
        try:
            family = psutil.Process(cluster.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        cluster.terminate()
        try:
            cluster.wait(3)
        except subprocess.TimeoutExpired:
            cluster.kill()
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
