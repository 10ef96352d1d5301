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
