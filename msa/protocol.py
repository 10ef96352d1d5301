"""How another app's job gets MSAs: the one place that knows the `msa` kind's name, its
parameters and the names of the files it writes.

A job asks for its chains' MSAs with `search` (a child job, on a CPU slot, which the asking job
waits for); once the search has succeeded, `found` gives its files, one per chain, and
`chain_of` tells which chain a file is for. A chain's file is `msa-<chain>.a3m`, or
`msa-<chain>.csv` (boltz's `key,sequence`) where the chains were paired.
"""

from jobs.kinds.base import Child
from jobs.models import Artifact, Job, State

KIND = "msa"
PREFIX = "msa-"


def search(chains: list[tuple[str, str]], source: str, name: str) -> Child:
    """The job that finds the MSAs of these chains ((id, sequence) each) at `source` (the
    configured server, or a node's local database)."""
    return Child(
        kind=KIND,
        name=name,
        params={"source": source, "chains": [{"id": c, "sequence": s} for c, s in chains]},
    )


def file_name(chain: str, paired: bool) -> str:
    return f"{PREFIX}{chain}.{'csv' if paired else 'a3m'}"


def chain_of(name: str) -> str | None:
    """The chain an MSA file is for; None for a file that is not one."""
    if not name.startswith(PREFIX) or "." not in name:
        return None
    return name[len(PREFIX) :].rsplit(".", 1)[0]


def searches(job: Job):
    """The MSA searches a job asked for."""
    return job.children.filter(kind=KIND)


def found(job: Job, chain: str | None = None):
    """The MSA files the job's succeeded searches wrote (only that chain's, if given)."""
    files = Artifact.objects.filter(
        job__parent=job, job__kind=KIND, job__state=State.SUCCEEDED, name__startswith=PREFIX
    )
    if chain is not None:
        files = files.filter(name__in=[file_name(chain, paired) for paired in (False, True)])
    return files


class SearchFailed(Exception):
    """A parent job's search ended without its MSA (`search_job`: the search)."""

    def __init__(self, search_job: Job):
        super().__init__(f"the target's MSA (job {search_job.pk}) {search_job.state}")
        self.search_job = search_job


def searched_upload(parent: Job, chain: str, sequence: str, source: str, name: str):
    """For a job that holds no slot and predicts one chain against many partners (a design
    campaign's target, a screen's): the upload id of that chain's MSA, searched once by a
    child `msa` job and stored as an upload of the project (`name`), so every prediction names
    it. None for single sequence; False while it is searched (the search submitted now if it
    was not); SearchFailed if it ended without one."""
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from jobs.models import ACTIVE
    from jobs.services import job_add_children
    from portal.uploads.services import upload_create

    if source == "single":
        return None
    search_job = searches(parent).first()
    if search_job is None:
        job_add_children(
            parent=parent, children=[search([(chain, sequence)], source, "MSA of the target")]
        )
        return False
    if search_job.state in ACTIVE:
        return False
    if search_job.state != State.SUCCEEDED:
        raise SearchFailed(search_job)
    artifact = found(parent, chain=chain).get()
    with default_storage.open(artifact.storage_key, "rb") as f:
        data = f.read()
    kind = "csv" if artifact.name.endswith(".csv") else "a3m"
    file = ContentFile(data, name=f"{name}.{kind}")
    file.sha256, file.kind = hashlib.sha256(data).hexdigest(), kind
    upload, _ = upload_create(project=parent.project, by=parent.owner, file=file)
    return upload.pk
