"""A job's artifacts as one ZIP, streamed as it is written, with a provenance manifest and the
job's log."""

import io
import json
import zipfile

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
        ],
        "ran_on": {
            "node": node.name if node else None,
            "gpu": job.gpu,
            "gpu_model": next(
                (g.get("name") for g in (node.gpus if node else []) if g.get("index") == job.gpu),
                None,
            ),
            "engines": node.engines if node else {},
        },
        # What the kind's engine says it ran with (weights and their digests, versions).
        "engine": _provenance(job),
        "artifacts": [
            {"name": a.name, "size": a.size, "sha256": a.sha256} for a in job.artifacts.all()
        ],
        "written_at": timezone.now().isoformat(),
    }


def _provenance(job) -> dict | None:
    artifact = job.artifacts.filter(name="provenance.json").first()
    if artifact is None:
        return None
    with default_storage.open(artifact.storage_key, "rb") as f:
        return json.loads(f.read())


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
