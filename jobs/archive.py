"""A job's artifacts as one ZIP, streamed as it is written, with a provenance manifest and the
job's log."""

import io
import json
import zipfile

from django.core.exceptions import ObjectDoesNotExist
from django.core.files.storage import default_storage
from django.utils import timezone

import portal


class _Sink(io.RawIOBase):
    """Where zipfile writes: collects bytes until the response takes them."""

    def __init__(self):
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def size(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def manifest(job) -> dict:
    """What a result needs to be re-run and compared: versions, parameters, input digests,
    where it ran."""
    node = job.node
    return {
        "portal_version": portal.__version__,
        "job": {
            "id": job.pk,
            "kind": job.kind,
            "name": job.name,
            "project": job.project_id,
            "owner": job.owner.username,
            "state": job.state,
            "params": job.params,
            "priority": job.priority_name,
            "attempt": job.attempt,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
        "inputs": [
            {
                "name": i.upload.name,
                "kind": i.upload.kind,
                "size": i.upload.size,
                "sha256": i.upload.sha256,
            }
            for i in job.job_inputs.select_related("upload")
        ]
        # Files the kind fetched besides the uploads (a trained model for `score`).
        + [{"name": f["name"], "sha256": f["sha256"]} for f in _extra_inputs(job)],
        "ran_on": {
            "node": node.name if node else None,
            "gpu": job.gpu,
            "gpu_model": next(
                (g.get("name") for g in (node.gpus if node else []) if g.get("index") == job.gpu),
                None,
            ),
            # As the node reported them when it started the job.
            "engines": job.node_engines,
        },
        # What the kind's engine says it ran with (weights and their digests, versions); for a
        # job whose children ran the engine (a campaign, a screen), what they ran with.
        "engine": _provenance(job),
        "children_ran_on": _children_nodes(job),
        "artifacts": [
            {"name": a.name, "size": a.size, "sha256": a.sha256} for a in job.artifacts.all()
        ],
        "written_at": timezone.now().isoformat(),
    }


def _provenance(job) -> dict | list | None:
    artifact = job.artifacts.filter(name="provenance.json").first()
    if artifact is not None:
        with default_storage.open(artifact.storage_key, "rb") as f:
            return json.loads(f.read())
    # A parent's children on one node ran the same engine: the first of each node says it
    # (without its own seed and options), each different one once.
    found = []
    succeeded = job.children.filter(state="succeeded", node__isnull=False)
    for node_id in succeeded.values_list("node_id", flat=True).distinct().order_by("node_id"):
        child = succeeded.filter(node_id=node_id).order_by("pk").first()
        ran = _provenance(child)
        if isinstance(ran, dict):
            same = {k: v for k, v in ran.items() if k not in ("seed", "options")}
            if same not in found:
                found.append(same)
    return found or None


def _children_nodes(job) -> dict[str, int]:
    """How many of its children ran on each node (for a parent job)."""
    counts: dict[str, int] = {}
    for name in job.children.exclude(node__isnull=True).values_list("node__name", flat=True):
        counts[name] = counts.get(name, 0) + 1
    return counts


def _extra_inputs(job) -> list[dict]:
    from jobs.kinds import get_kind

    kind = get_kind(job.kind)
    try:
        return kind.extra_inputs(job) if kind is not None else []
    except ObjectDoesNotExist:  # what it names is gone: the manifest still comes
        return []


LOG = "log.txt"


def log_lines(job):
    """The job's log, line by line as it printed them (every attempt), read in batches."""
    events = job.events.filter(type="log").order_by("seq").values_list("data", flat=True)
    for data in events.iterator(chunk_size=2000):
        yield f"{data.get('line', '')}\n"


def archive_stream(job):
    sink = _Sink()
    stamp = (job.finished_at or timezone.now()).timetuple()[:6]
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("manifest.json", date_time=stamp),
            json.dumps(manifest(job), indent=2),
        )
        yield sink.take()
        for artifact in job.artifacts.all():
            info = zipfile.ZipInfo(artifact.name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            with (
                default_storage.open(artifact.storage_key, "rb") as source,
                archive.open(info, "w", force_zip64=True) as target,
            ):
                while chunk := source.read(1 << 20):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
        # Its log, unless the job wrote a file of that name itself.
        if not job.artifacts.filter(name=LOG).exists():
            info = zipfile.ZipInfo(LOG, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as target:
                for line in log_lines(job):
                    target.write(line.encode())
                    if sink.size() > 1 << 20:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
