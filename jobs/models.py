from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from nodes.models import Node
from portal.projects.models import Project
from portal.uploads.models import Upload


class State(models.TextChoices):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = [State.PENDING, State.QUEUED, State.RUNNING]
FINISHED = [State.SUCCEEDED, State.FAILED, State.CANCELLED]

# The state machine: every change of a job's state is one of these, recorded with its reason.
TRANSITIONS = {
    State.PENDING: {State.QUEUED, State.FAILED, State.CANCELLED},
    State.QUEUED: {State.RUNNING, State.FAILED, State.CANCELLED},
    # Back to queued when its node died or was taken out of service.
    State.RUNNING: {State.SUCCEEDED, State.FAILED, State.CANCELLED, State.QUEUED},
    State.SUCCEEDED: set(),
    State.FAILED: set(),
    State.CANCELLED: set(),
}


class Priority(models.IntegerChoices):
    LOW = 0, "low"
    NORMAL = 1, "normal"
    HIGH = 2, "high"

    @classmethod
    def from_name(cls, name: str) -> "Priority":
        return {p.label: p for p in cls}[name]


class Job(models.Model):
    """A piece of work of some kind, run on a node's slot.

    A job may work for another (`parent`): a search it runs after, a candidate of a search.
    A job whose kind gives it such jobs at submission waits for them in `pending`, and goes on
    (queued, or failed with the reason) when the last has ended (jobs/services.py:
    `job_children_ended`).

    `placement` counts how often the job was handed to a node; the runner's task carries it,
    and everything a runner writes is checked against it, so a superseded or doubly delivered
    run changes nothing. `attempt` counts runs that started (a node lost mid-run costs one).
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=200, blank=True)
    params = models.JSONField(default=dict)
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    # SHA-256 of kind, parameters and input digests: the same work submitted twice.
    fingerprint = models.CharField(max_length=64, db_index=True)

    node = models.ForeignKey(
        Node, on_delete=models.SET_NULL, null=True, blank=True, related_name="jobs"
    )
    slot = models.SmallIntegerField(null=True, blank=True)
    gpu = models.SmallIntegerField(null=True, blank=True)
    node_boot_id = models.CharField(max_length=64, blank=True)
    # The engines its node reported as it started the job (versions, weights): its provenance.
    node_engines = models.JSONField(default=dict, blank=True)
    placement = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_output_at = models.DateTimeField(null=True, blank=True)

    # Bytes of GPU memory the job needs, as its kind estimated at submission (None: unknown).
    gpu_memory = models.BigIntegerField(null=True, blank=True)
    # Whether the job must have its GPU to itself although its kind shares one: it ran out of
    # GPU memory beside other jobs once (jobs/runner.py), and runs again alone.
    gpu_alone = models.BooleanField(default=False)
    # Engines (as nodes report them) this job needs of its node beyond its kind's, decided at
    # submission from its parameters: a search in a local database needs a node with it.
    needs = models.JSONField(default=list, blank=True)
    # What a scientist should know of a job that was accepted (a letter read as an unknown
    # residue…), decided at submission by its kind: shown with it.
    warnings = models.JSONField(default=list, blank=True)
    time_limit = models.PositiveIntegerField(default=0)  # seconds
    silence_limit = models.PositiveIntegerField(default=0)  # seconds
    cancel_requested = models.BooleanField(default=False)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    progress = models.FloatField(default=0)
    progress_message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # The id of this job's last event; the next one gets the next number.
    event_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "priority", "queued_at"]),
            models.Index(fields=["project", "state"]),
            models.Index(fields=["owner", "placed_at"]),
        ]
        constraints = [
            # One job per slot: two schedulers placing at once cannot double-book it.
            models.UniqueConstraint(
                fields=["node", "slot"],
                condition=Q(state__in=["queued", "running"]) & Q(node__isnull=False),
                name="one_job_per_slot",
            )
        ]

    def __str__(self):
        return f"#{self.pk} {self.kind} {self.name}".strip()

    @property
    def priority_name(self) -> str:
        return Priority(self.priority).label

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED


class JobInput(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="job_inputs")
    # An upload a job used cannot be deleted under it (unless its whole project goes).
    upload = models.ForeignKey(Upload, on_delete=models.RESTRICT, related_name="job_inputs")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="one_input_per_position")
        ]

    def __str__(self):
        return f"input {self.position} of job {self.job_id}"


class JobTransition(models.Model):
    """One change of a job's state: when, why, and who asked for it (if anyone)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=10, choices=State.choices)
    to_state = models.CharField(max_length=10, choices=State.choices)
    reason = models.CharField(max_length=500)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    node = models.CharField(max_length=63, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "at", "id"]

    def __str__(self):
        return f"job {self.job_id}: {self.from_state} → {self.to_state} ({self.reason})"


class EventType(models.TextChoices):
    LOG = "log"
    METRIC = "metric"
    PROGRESS = "progress"
    STATE = "state"


class JobEvent(models.Model):
    """A log line, metric point, progress change or state change, numbered per job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=10, choices=EventType.choices)
    data = models.JSONField()
    placement = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="one_event_per_seq")]

    def __str__(self):
        return f"job {self.job_id} event {self.seq} ({self.type})"

    def as_message(self) -> dict:
        return {"id": self.seq, "type": self.type, "at": self.created_at.isoformat(), **self.data}


class Artifact(models.Model):
    """A file a job produced, in storage under the job's id and placement."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=500)
    placement = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["job", "name"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="one_artifact_per_name")
        ]

    def __str__(self):
        return self.name
