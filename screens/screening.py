"""How a screen moves on: from the scheduler (`advance_screens`, at every sweep), never from a
node, each step in one transaction holding the screen's row.

A step records the figures of the ligands whose child jobs ended since the last (a failed one
with its reason), reads the ligands from the upload the first time (rows here), finds the
target's MSA once (cofold, as a design campaign does: an `msa` child, its result an upload every
prediction names), submits the next batch of ligands as child jobs (each saved with its child
in the same transaction, so a restart of anything at any moment submits none twice and loses no
figure), and ends the screen with its ranking once every ligand has ended.
"""

import csv
import hashlib
import io
import json

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from jobs.kinds.base import Child
from jobs.models import ACTIVE, Job, State
from jobs.parents import Ended, ParentStep, advance_all
from jobs.parents import advance as advance_one
from jobs.services import artifact_stored, job_add_children
from msa import protocol as msa
from portal.errors import PortalError
from portal.uploads.services import upload_create
from predictions.results import record_name
from screens.kinds import STRUCTURES, TABLES, TARGET, cofold_params, pose_params
from screens.ligands import read_ligands
from screens.models import Ligand

BATCH = 32  # ligands submitted per step: each is checked as a submission is
TOP_STRUCTURES = 10


def advance_screens() -> None:
    """Move every running screen on (the scheduler calls this at every sweep)."""
    advance_all("screen", Step)


def advance(screen_id: int) -> None:
    """One step of the screen."""
    advance_one(screen_id, "screen", Step)


class Step(ParentStep):
    def __init__(self, screen: Job):
        super().__init__(screen)
        self.screen = screen

    def results(self) -> list[dict]:
        return results(self.screen)

    def run(self) -> None:
        self.score_ended()
        if not self.screen.ligands.exists():
            self.read()
        target_msa = self.target_msa()
        if target_msa is False:
            return
        self.submit(target_msa)
        ligands = self.screen.ligands
        if ligands.filter(scored_at__isnull=True).exists():
            self.progress()
            return
        scored = ligands.filter(affinity_pred_value__isnull=False).count()
        if not scored:
            first = ligands.order_by("index").first()
            raise Ended(State.FAILED, "no ligand was scored", first.error if first else "")
        raise Ended(State.SUCCEEDED, f"{scored} of {ligands.count()} ligands scored")

    def uploads(self):
        uploads = {i.upload.kind: i.upload for i in self.screen.job_inputs.select_related("upload")}
        structure = next((uploads[k] for k in STRUCTURES if k in uploads), None)
        return structure, next(uploads[k] for k in TABLES if k in uploads)

    def read(self) -> None:
        _, table = self.uploads()
        found, left_out = read_ligands(table)
        Ligand.objects.bulk_create(
            Ligand(screen=self.screen, index=i, name=r.name, smiles=r.smiles, molblock=r.molblock)
            for i, r in enumerate(found)
        )
        self.say(f"{len(found)} ligands read from {table.name}")
        for line in left_out:
            self.say(f"Left out: {line}")

    def target_msa(self):
        """cofold: the upload id of the target's MSA; None for single sequence (or poses);
        False while it is searched. Ends the screen if the search failed."""
        if self.params["mode"] != "cofold":
            return None
        source = self.params.get("msa", "single")
        first = not msa.searches(self.screen).exists()
        try:
            found = msa.searched_upload(
                self.screen,
                TARGET,
                self.params["target"],
                source,
                f"screen-{self.screen.pk}-target",
            )
        except msa.SearchFailed as failed:
            raise Ended(State.FAILED, str(failed), failed.search_job.error) from None
        if first and found is False:
            self.say(f"The target's MSA: searched ({source}) once, before the ligands")
        return found

    def submit(self, target_msa) -> None:
        """The next ligands without a child get one (each alone: one boltz refuses is
        recorded as failed, the rest go on)."""
        waiting = self.screen.ligands.filter(job__isnull=True, scored_at__isnull=True)
        batch = list(waiting.order_by("index")[:BATCH])
        structure, _ = self.uploads()
        for ligand in batch:
            child = self.child(ligand, structure, target_msa)
            try:
                with transaction.atomic():
                    [ligand.job] = job_add_children(parent=self.screen, children=[child])
            except PortalError as exc:
                ligand.error, ligand.scored_at = f"refused: {exc}", timezone.now()
                self.say(f"Ligand {ligand.index + 1} {ligand.name}: {ligand.error}")
            ligand.save()

    def child(self, ligand: Ligand, structure, target_msa) -> Child:
        name = f"Ligand {ligand.index + 1}: {ligand.name}"
        if self.params["mode"] == "cofold":
            return Child("predict", name, cofold_params(self.params, ligand.smiles, target_msa))
        data = ligand.molblock.encode()
        file = ContentFile(data, name=f"screen-{self.screen.pk}-pose-{ligand.index + 1}.sdf")
        file.sha256, file.kind = hashlib.sha256(data).hexdigest(), "sdf"
        pose, _ = upload_create(project=self.screen.project, by=self.screen.owner, file=file)
        return Child("affinity", name, pose_params(self.params), inputs=(structure.pk, pose.pk))

    def score_ended(self) -> None:
        ended = self.screen.ligands.filter(scored_at__isnull=True, job__isnull=False).exclude(
            job__state__in=ACTIVE
        )
        changed = False
        for ligand in ended.select_related("job").order_by("index"):
            changed = True
            child, label = ligand.job, f"Ligand {ligand.index + 1} {ligand.name}"
            ligand.scored_at = timezone.now()
            metrics = child.metrics or {}
            value = (metrics.get("affinity_pred_value") or {}).get("value")
            if child.state == State.SUCCEEDED and value is not None:
                ligand.affinity_pred_value = value
                ligand.affinity_probability_binary = metrics["affinity_probability_binary"]["value"]
                ligand.iptm = (metrics.get("iptm") or {}).get("value")
                self.say(
                    f"{label}: log10 IC50 {value:.3f}, binder probability "
                    f"{ligand.affinity_probability_binary:.3f}"
                )
            else:
                last = child.transitions.order_by("-at", "-id").first()
                ligand.error = f"{child.state}: {child.error or (last.reason if last else '')}"
                self.say(f"{label}: {ligand.error}")
            ligand.save()
        # The best so far, as the screen's figure (the jobs list shows it beside the screen).
        scored = self.screen.ligands.filter(affinity_pred_value__isnull=False)
        best = scored.order_by("affinity_pred_value").values_list("affinity_pred_value", flat=True)
        if changed and best:
            self.events.append(
                {
                    "type": "metric",
                    "step": scored.count(),
                    "name": "best_affinity_pred_value",
                    "value": best[0],
                }
            )

    def progress(self) -> None:
        ligands = self.screen.ligands
        total = ligands.count()
        done = ligands.filter(scored_at__isnull=False).count()
        running = ligands.filter(job__state=State.RUNNING, scored_at__isnull=True).count()
        message = (
            f"{done} of {total} ligands done, {running} running, {total - done - running} waiting"
        )
        if message != self.screen.progress_message:
            percent = min(99.0, 100.0 * done / max(total, 1))
            self.events.append({"type": "progress", "percent": percent, "message": message})


def ranked(screen: Job):
    """A screen's ligands, strongest predicted binder first (the unscored after)."""
    order = [F("affinity_pred_value").asc(nulls_last=True), "index"]
    return (
        Ligand.objects.filter(screen=screen)
        .select_related("job")
        .annotate(rank=Window(RowNumber(), order_by=order))
        .order_by(*order)
    )


def results(screen: Job) -> list[dict]:
    """The screen's artifacts: its ligands ranked as CSV, the top complexes (the children's own
    files, not copied), and its parameters."""
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(
        [
            "rank",
            "index",
            "name",
            "smiles",
            "affinity_pred_value",
            "ic50_um",
            "affinity_probability_binary",
            "iptm",
            "job",
            "error",
        ]
    )
    rows = list(ranked(screen))
    for ligand in rows:
        value = ligand.affinity_pred_value
        writer.writerow(
            [
                ligand.rank if value is not None else "",
                ligand.index + 1,
                ligand.name,
                ligand.smiles,
                _figure(value),
                "" if value is None else f"{10**value:.4g}",
                _figure(ligand.affinity_probability_binary),
                _figure(ligand.iptm),
                ligand.job_id or "",
                ligand.error,
            ]
        )
    params = {k: v for k, v in screen.params.items() if k != "notes"}
    summary = {
        "screen": screen.pk,
        "params": params,
        "ligands": len(rows),
        "scored": sum(1 for r in rows if r.affinity_pred_value is not None),
        "ranked_by": "affinity_pred_value (log10 IC50 in µM), lowest first",
        "ended_at": timezone.now().isoformat(),
    }
    artifacts = [
        artifact_stored(screen, "ligands.csv", table.getvalue().encode()),
        artifact_stored(screen, "screen.json", json.dumps(summary, indent=2).encode()),
    ]
    scored = [r for r in rows if r.affinity_pred_value is not None and r.job is not None]
    for position, ligand in enumerate(scored[:TOP_STRUCTURES], start=1):
        record = record_name(ligand.job.params, ligand.job_id)
        names = (f"{record}_model_0.cif", f"{record}_model_0.pdb", f"{record}_complex.cif")
        for structure in ligand.job.artifacts.filter(name__in=names):
            suffix = structure.name.rsplit(".", 1)[1]
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in ligand.name)[:40]
            artifacts.append(
                {
                    "name": f"rank-{position:02d}_{safe}.{suffix}",
                    "size": structure.size,
                    "sha256": structure.sha256,
                    "storage_key": structure.storage_key,
                }
            )
    return artifacts


def _figure(value) -> str:
    return "" if value is None else f"{value:.4f}"
