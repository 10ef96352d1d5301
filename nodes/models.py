from datetime import timedelta

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_LANES = 16  # jobs one GPU may run at once, at most


class Status(models.TextChoices):
    IDLE = "idle", "idle"
    BUSY = "busy", "busy"
    OFFLINE = "offline", "offline"
    DISABLED = "disabled", "disabled"
    DRAINING = "draining", "draining"


class Node(models.Model):
    """A host that runs jobs: its GPUs and CPU slots, as its agent reports them. Each GPU has
    `lanes_per_gpu` slots (lanes): jobs that share a GPU run side by side while their memory
    fits (jobs/placement.py), each lane with its own warm engine.

    Jobs placed here point back as `node.jobs` (the jobs app's foreign key); a job in state
    "running" occupies a slot.
    """

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[RegexValidator(NAME_PATTERN, "lower-case letters, digits, - and _")],
    )
    queue = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=16)
    enabled = models.BooleanField(default=True)
    draining = models.BooleanField(default=False)
    cpu_slots = models.PositiveSmallIntegerField(default=1)
    # How many jobs one of its GPUs may run at once (`runnode --jobs-per-gpu`), as it reports.
    lanes_per_gpu = models.PositiveSmallIntegerField(default=1)
    # What the agent last reported.
    address = models.GenericIPAddressField(null=True, blank=True)
    hostname = models.CharField(max_length=255, blank=True)
    boot_id = models.CharField(max_length=64, blank=True)
    gpus = models.JSONField(default=list, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True)
    memory_total = models.BigIntegerField(null=True, blank=True)
    memory_used = models.BigIntegerField(null=True, blank=True)
    engines = models.JSONField(default=dict, blank=True)
    # Resident engines running on it: engine, kind, slot, gpu, state, memory held (bytes).
    warm_engines = models.JSONField(default=list, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @staticmethod
    def online_since() -> "timezone.datetime":
        """Heartbeats after this moment count as online."""
        return timezone.now() - timedelta(seconds=settings.PORTAL_NODE_OFFLINE_AFTER)

    def is_online(self) -> bool:
        return self.last_heartbeat_at is not None and self.last_heartbeat_at > self.online_since()

    def status(self, busy: bool = False) -> str:
        if not self.enabled:
            return Status.DISABLED
        if not self.is_online():
            return Status.OFFLINE
        if self.draining:
            return Status.DRAINING
        return Status.BUSY if busy else Status.IDLE

    def slots(self) -> list[dict]:
        """The GPUs' lanes (GPU by GPU: with L lanes a GPU, the k-th GPU's are slots kL to
        kL + L - 1; with one lane, slot number = GPU index), then the CPU slots. Each says its
        GPU (`gpu`, None on a CPU slot), its lane, the memory its GPU has (`memory`), and the
        resident engines warm on it by engine class, with the memory each holds (`warm`)."""
        warm: dict[int, dict[str, int]] = {}
        for engine in self.warm_engines or []:
            warm.setdefault(engine["slot"], {})[engine["engine"]] = engine.get("memory") or 0
        lanes = max(1, self.lanes_per_gpu)
        slots = [
            {
                "slot": i * lanes + lane,
                "gpu": gpu.get("index", i),
                "lane": lane,
                "memory": gpu.get("memory_total"),
            }
            for i, gpu in enumerate(self.gpus or [])
            for lane in range(lanes)
        ]
        first_cpu = len(slots)
        slots += [
            {"slot": first_cpu + i, "gpu": None, "lane": 0, "memory": None}
            for i in range(self.cpu_slots)
        ]
        for slot in slots:
            slot["warm"] = warm.get(slot["slot"], {})
        return slots

    def can_run(self, engine: str) -> bool:
        """Whether the agent reported this engine as installed and ready."""
        return bool((self.engines or {}).get(engine, {}).get("ready"))
