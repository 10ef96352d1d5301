"""The interface every job kind implements.

A kind is a plug-in in the app it belongs to (the app's `kinds.py`), registered from the
app's `AppConfig.ready` with `jobs.kinds.register`; `check` is the one built in. It:

- declares its parameters once, as a DRF serializer (`Params`): that declaration validates
  submissions (unknown parameters refused, defaults filled in, a 400 naming each bad field),
  documents them in the API's schema (one request schema per kind) and builds the kind's
  form on the new-job page;
- `validate`s what one field cannot say alone, and its inputs, at submission (knowing who
  submits to which project), raising `PortalError` with a message for a scientist, and
  returns the cleaned parameters that are stored with the job;
- may estimate the GPU memory a job needs (`gpu_memory`), once, at submission;
- may say what a job `needs` of its node beyond the kind's `requires` (a search in a local
  database needs a node that has it), decided at submission and stored with the job;
- may give a job `first_children`: jobs that must end before it can run (a search on a CPU
  slot before the job takes a GPU). They are submitted with it, it waits for them in `pending`, and
  `children_ended` decides what follows once the last has ended (by default: queued if all
  succeeded, else failed, naming the child and its reason);
- names any `extra_inputs` the node must fetch besides the uploads (another job's artifact, such
  as a trained model or what its first children found), and any `named_uploads`: uploads its
  parameters name by id (inside a document it takes), which join the job's inputs after those
  given;
- runs in one of four ways (`Runs`), each a base class with only its own hooks: a
  `CommandKind` `build`s a `Command`, a fresh subprocess per job; an `EngineKind` asks the
  slot's resident engine process (jobs/engine_server.py), which keeps its model loaded between
  jobs, for an `engine_request`, the engine started with the kind's `engine_environment` and the
  node's `engine_options`; a `RunnerKind` `run`s in a thread of the node's runner itself, for
  work that needs the portal's database and storage (a search with a cache of its own), which a
  job's own process is never given; a `ParentKind` holds no slot: it runs as its children do;
- `collect`s outputs: by default every file the job wrote into its `out/` directory becomes an
  artifact.

Whichever way it runs, the job's output reaches the portal as lines on stdout; a line starting
with the marker of jobs/markers.py carries a metric point or a progress change.
"""

import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rest_framework import serializers

from portal.errors import ParamsInvalid


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Input:
    """One of a job's uploads, fetched into its scratch directory."""

    path: Path
    digest: str  # its SHA-256, checked when it was fetched
    kind: str  # the upload's kind (csv, yaml, …)
    id: int  # the upload's id


@dataclass
class RunContext:
    """What a kind knows of the job it builds a run for, on the node."""

    job_id: int
    params: dict
    inputs: list[Input]  # in order: those given, then those its parameters name
    scratch: Path  # the job's working directory
    out: Path  # files written here become the job's artifacts
    slot: int  # the node's slot it runs on (a GPU's, or a CPU slot's)
    gpu: int | None  # the GPU index the job may use, None for a CPU slot
    extras: dict[str, Path] = field(default_factory=dict)  # extra inputs, by name


@dataclass(frozen=True)
class Page:
    """A kind's own parts of the portal's pages; the generic pages name no kind."""

    # Included in a job's page below its progress (a structure, a table of candidates), with
    # the job in its context.
    template: str | None = None
    # Static files the job's page loads after its own (scripts, then styles in its head).
    scripts: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    # Whether the job's page draws its metric points as charts (a kind whose figures its own
    # part shows says no).
    charts: bool = True
    # The new-job page's template, extending jobs/new_kind.html (by default that page alone).
    form: str | None = None


@dataclass
class Child:
    """A job another job submits for itself (see `JobKind.first_children`)."""

    kind: str
    name: str
    params: dict
    inputs: tuple[int, ...] = ()  # upload ids of the parent's project


class Output:
    """What a runner kind's `run` says and hears: its lines and progress go to the job's
    log as a subprocess's output would, and `stopping` is set when the run must stop (cancel,
    time limit): the run checks it between its steps."""

    def __init__(self, put):
        self._put = put
        self.stopping = threading.Event()

    def line(self, text: str) -> None:
        self._put(text)

    def progress(self, percent: float, message: str = "") -> None:
        from jobs import markers

        self._put(markers.marked({"type": "progress", "percent": percent, "message": message}))


class NoParams(serializers.Serializer):
    """A kind that takes no parameters."""


class Runs(enum.Enum):
    """How a kind's jobs run (one base class each, below)."""

    SUBPROCESS = "a fresh subprocess per job"
    ENGINE = "the slot's resident engine"
    RUNNER = "a thread of the node's runner"
    NO_SLOT = "as its children do, holding no slot"


class JobKind:
    """What every kind has, whichever way it runs; a kind derives from one of the four classes
    below, not from this one."""

    runs: Runs
    name: str = ""
    title: str = ""
    # The parameters, declared once (see above).
    Params: type[serializers.Serializer] = NoParams
    # "none": CPU slots only; "optional": a GPU slot if free, else a CPU slot; "required".
    gpu: str = "optional"
    # Whether its jobs may run beside others on one GPU, each in a lane of its own, while their
    # memory estimates (`gpu_memory`) fit (jobs/placement.py); else a job has its GPU alone.
    shares_gpu: bool = False
    # Whether its program takes all of its GPU's memory whatever its estimate says (JAX takes
    # 95 % of it as it starts): the idle engines on its GPU are stopped before it starts.
    whole_gpu: bool = False
    # Whether a portal may well have no node for it (AlphaFold 3, which each lab licenses):
    # that it cannot run is said on its form and in the list of kinds, not on the dashboard.
    optional: bool = False
    # Parameters `validate` draws at random where a submission gives none (a seed): two
    # submissions that give none are the same submission (jobs/services.py: `fingerprint`).
    drawn: tuple[str, ...] = ()
    # Engines (by the names the node agent reports them under) a node must have ready.
    requires: tuple[str, ...] = ()
    # How many uploads the kind takes, and of which kinds.
    min_inputs: int = 0
    max_inputs: int = 0
    input_kinds: tuple[str, ...] = ()
    # Its parts of the pages (see `Page`).
    page: Page = Page()
    # The metrics a list of jobs shows beside each of this kind's: (metric name, label).
    headline: tuple[tuple[str, str], ...] = ()

    def warm_up(self) -> None:
        """Load what checking a submission of this kind needs (a parser and its libraries),
        so that the web server's first submission of it does not wait for that: `serve` calls
        it on a thread of its own as it starts."""

    def clean_params(self, params: dict) -> dict:
        """The parameters as `Params` declares them, defaults filled in; unknown or bad ones
        are refused with a 400 naming each (`params.<name>: why`)."""
        declared = self.Params(data=params)
        errors = {
            name: [f"Unknown parameter; {self.name} takes {', '.join(declared.fields) or 'none'}."]
            for name in sorted(set(params) - set(declared.fields))
        }
        if not declared.is_valid():
            errors.update(declared.errors)
        if errors:
            raise ParamsInvalid({"params": errors})
        return dict(declared.validated_data)

    def validate(self, params: dict, inputs: list, *, user=None, project=None) -> dict:
        """Check parameters (and the uploads given as inputs); return the cleaned parameters.
        By default what `Params` declares; a kind adds the checks one field cannot make."""
        return self.clean_params(params)

    def named_uploads(self, params: dict) -> list[int]:
        """Ids of the project's uploads the cleaned parameters name (checked by `validate`):
        they become inputs of the job after those given, fetched to the node like them and
        kept while the job is."""
        return []

    def split(self, params: dict, inputs: list) -> list[tuple[str, dict, list]] | None:
        """For a submission that stands for several jobs (one per record of a file): each
        job's (name, parameters, uploads), each then checked as a submission of
        its own; None (the default) for one job. Refusals are PortalError, as `validate`'s."""
        return None

    def default_name(self, params: dict, inputs: list) -> str:
        """A job's name when its submission gives none."""
        return f"{self.name} job"

    def again(self, job) -> tuple[dict, list[int]]:
        """What "Run again with changes" fills the form with: the job's parameters, but those
        drawn at random (a new seed is drawn unless one is typed), and its uploads."""
        params = {k: v for k, v in job.params.items() if k not in self.drawn}
        uploads = [
            i.upload_id
            for i in job.job_inputs.select_related("upload")
            if not self.input_kinds or i.upload.kind in self.input_kinds
        ]
        return params, uploads

    def warnings(self, params: dict) -> list[str]:
        """What a scientist should know of a job accepted with these cleaned parameters (a
        letter the program reads as an unknown residue…): stored with the job and shown
        with it."""
        return []

    def needs(self, params: dict) -> list[str]:
        """Engines a node must have ready for this job, beyond the kind's `requires`."""
        return []

    def first_children(self, params: dict) -> list[Child]:
        """Jobs to submit with this one (same project, owner and priority) that must end
        before it runs; it waits for them in `pending`."""
        return []

    def children_ended(self, job, children: list) -> tuple[str, str, str]:
        """What follows for a pending job once the last of its children has ended: (state,
        reason, error). Queued when all succeeded; else failed, naming the first that did
        not and why."""
        from jobs.models import State

        for child in children:
            if child.state != State.SUCCEEDED:
                why = child.error.strip().splitlines()[-1] if child.error.strip() else ""
                reason = f"{child.name} (job {child.pk}) {child.state}"
                last = child.transitions.order_by("-at", "-id").first()
                detail = why or (last.reason if last else "")
                return State.FAILED, f"{reason}: {detail}" if detail else reason, why
        return State.QUEUED, f"{', '.join(c.name for c in children)}: ready", ""

    def extra_inputs(self, job) -> list[dict]:
        """Files besides the uploads the node fetches into `in/` for this job: dicts of
        `name`, `storage_key` and `sha256` (checked on arrival)."""
        return []

    def gpu_memory(self, params: dict, inputs: list) -> int | None:
        """Bytes of GPU memory the job needs, if known: it goes only to a GPU that large."""
        return None

    def unavailable(self) -> str | None:
        """Why no node of this portal can run the kind's jobs now, with what an operator does
        about it (pages say so before a scientist fills a form); None when one can. By default
        from the engines the kind `requires`."""
        from nodes.models import Node

        if not self.requires:
            return None
        nodes = Node.objects.filter(enabled=True)
        if any(all(node.can_run(engine) for engine in self.requires) for node in nodes):
            return None
        return f"No node of this portal has {' and '.join(self.requires)} ready"

    def about_child(self, child) -> str:
        """A line on the page of a job this kind's job runs (a candidate of a search: its rank
        and score), or nothing."""
        return ""

    def page_context(self, job) -> dict:
        """What the kind's part of a job's page (`page.template`) needs beyond the job, as
        `page_context` in it."""
        return {}

    def form_context(self, project) -> dict:
        """What the kind's new-job page (`page.form`) needs besides the form and the project's
        uploads."""
        return {}

    def collect(self, context: RunContext) -> list[Path]:
        """The files that become artifacts."""
        return sorted(p for p in context.out.rglob("*") if p.is_file())

    @property
    def holds_slot(self) -> bool:
        return self.runs is not Runs.NO_SLOT


class CommandKind(JobKind):
    """Each job a fresh subprocess, in a process group of its own (jobs/processes.py)."""

    runs = Runs.SUBPROCESS

    def build(self, context: RunContext) -> Command:
        """The command that runs the job."""
        raise NotImplementedError


class EngineKind(JobKind):
    """Each job a request to the slot's resident engine (jobs/engine_client.py), which keeps
    its model loaded between jobs."""

    runs = Runs.ENGINE
    # The engine's class, as `module.Class` (a jobs.engine_server.Engine).
    engine: str = ""

    def engine_request(self, context: RunContext) -> dict:
        """What the resident engine is asked to do."""
        raise NotImplementedError

    def engine_environment(self) -> dict[str, str]:
        """Environment variables the kind's engine process starts with."""
        return {}

    def engine_options(self) -> dict:
        """This node's configuration for the kind's engine (weights, cache and checkpoint
        paths), read on the node where it starts: `Engine.load` gets it."""
        return {}


class RunnerKind(JobKind):
    """The work in a thread of the node's runner (jobs/processes.py: ThreadRun), which has the
    portal's database and storage."""

    runs = Runs.RUNNER

    def run(self, context: RunContext, output: Output) -> None:
        """The work itself; an exception's message is the job's reason for failing."""
        raise NotImplementedError


class ParentKind(JobKind):
    """A job that runs as its children do and holds no slot itself (a search over many
    candidates): it is born running, on no node, and its own app moves it on and ends it
    (jobs/services.py: `job_add_children`, `job_conclude`; its output through
    jobs/lifecycle.py: `events_append`)."""

    runs = Runs.NO_SLOT
