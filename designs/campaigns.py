"""How a design campaign moves on: from the scheduler (`advance_campaigns`, at every sweep),
never from a node, and each step in one transaction holding the campaign's row.

A step scores the candidates whose predictions ended since the last (a failed one is recorded
with its reason and left out of selection), and when every candidate of the newest generation
has ended it reports that generation (best and mean fitness as metric points) and either ends
the campaign (the last generation, a plateau, or a generation that failed whole) or breeds the
next one (designs/search.py) and submits its candidates as child `predict` jobs. What a step
decides is stored with what it changes, and the next generation exists only once its
candidates do, so a restart of anything at any moment repeats no step: no candidate is
predicted twice and none finished is lost. The search draws from a generator seeded with the
campaign's seed and the generation, so the same seed and the same predictions give the same
candidates.

Before the first generation, a target that needs an MSA gets it from an `msa` child job (the
msa/ app, its cache included); the MSA becomes an upload of the project, named by every
candidate's input, so it is computed once and read by every prediction.
"""

import csv
import io
import json
import random

import numpy as np
from django.core.files.storage import default_storage
from django.utils import timezone

from designs import search
from designs.constraints import checks, fraction_met
from designs.kinds import BINDER, TARGET, candidate_params
from designs.models import Candidate
from jobs.kinds.base import Child
from jobs.models import ACTIVE, Artifact, Job, State
from jobs.parents import Ended, ParentStep, advance_all
from jobs.parents import advance as advance_one
from jobs.services import artifact_stored, job_add_children
from msa import protocol as msa
from portal.errors import PortalError
from predictions.kinds import PredictKind
from predictions.results import record_name

TOP_STRUCTURES = 10  # ranked structures in the campaign's artifacts


def advance_campaigns() -> None:
    """Move every running campaign on (the scheduler calls this at every sweep)."""
    advance_all("design", Step)


def advance(campaign_id: int) -> None:
    """One step of the campaign."""
    advance_one(campaign_id, "design", Step)


class Step(ParentStep):
    def __init__(self, campaign: Job):
        super().__init__(campaign)
        self.campaign = campaign

    def results(self) -> list[dict]:
        return results(self.campaign)

    def run(self) -> None:
        self.score_ended()
        target_msa = self.target_msa()
        if target_msa is False:
            return
        candidates = list(self.campaign.candidates.order_by("generation", "index"))
        if not candidates:
            rng = self.rng(0)
            first = []
            while len(first) < self.params["population"]:
                sequence = search.random_candidate(
                    rng,
                    self.params["binder_type"],
                    self.params["length_min"],
                    self.params["length_max"],
                )
                if sequence not in first:
                    first.append(sequence)
            self.submit(0, first, target_msa)
            return
        generation = candidates[-1].generation
        newest = [c for c in candidates if c.generation == generation]
        if any(c.scored_at is None for c in newest):
            self.progress(candidates, generation)
            return
        self.generation_ended(candidates, generation, target_msa)

    # --- the target's MSA ----------------------------------------------------------------
    def target_msa(self):
        """The upload id of the target's MSA; None for single sequence; False while it is
        being searched. Ends the campaign if the search failed."""
        first = not msa.searches(self.campaign).exists()
        try:
            found = msa.searched_upload(
                self.campaign,
                TARGET,
                self.params["target"],
                self.params["msa"],
                f"design-{self.campaign.pk}-target",
            )
        except msa.SearchFailed as failed:
            raise Ended(State.FAILED, str(failed), failed.search_job.error) from None
        if first and found is False:
            self.say(
                f"The target's MSA: searched ({self.params['msa']}) before the first generation"
            )
        return found

    # --- candidates ----------------------------------------------------------------------
    def rng(self, generation: int) -> random.Random:
        # Reproducible by design (a seed), not a secret.
        return random.Random(f"{self.params['seed']}/{generation}")  # noqa: S311

    def submit(self, generation: int, sequences: list[str], target_msa) -> None:
        children = [
            Child(
                kind=PredictKind.name,
                name=f"Candidate {generation + 1}.{i + 1}: {sequence}",
                params=candidate_params(self.params, sequence, target_msa),
            )
            for i, sequence in enumerate(sequences)
        ]
        try:
            jobs = job_add_children(parent=self.campaign, children=children)
        except PortalError as exc:
            raise Ended(
                State.FAILED, f"generation {generation + 1} cannot be predicted: {exc}"
            ) from None
        Candidate.objects.bulk_create(
            Candidate(campaign=self.campaign, generation=generation, index=i, sequence=s, job=j)
            for i, (s, j) in enumerate(zip(sequences, jobs, strict=True))
        )
        self.say(
            f"Generation {generation + 1} of {self.params['generations']}: "
            f"{len(sequences)} candidates submitted"
        )
        self.progress(list(self.campaign.candidates.all()), generation)

    def score_ended(self) -> None:
        waiting = self.campaign.candidates.filter(scored_at__isnull=True).exclude(
            job__state__in=ACTIVE
        )
        for candidate in waiting.select_related("job").order_by("generation", "index"):
            child = candidate.job
            label = (
                f"Candidate {candidate.generation + 1}.{candidate.index + 1} {candidate.sequence}"
            )
            candidate.scored_at = timezone.now()
            if child.state == State.SUCCEEDED:
                try:
                    scored = score(child, candidate.sequence, self.params.get("constraints"))
                except (KeyError, ValueError, OSError, Artifact.DoesNotExist) as exc:
                    candidate.error = f"its prediction gave no scores: {exc}"
                else:
                    candidate.pair_iptm = scored.pair_iptm
                    candidate.binder_plddt = scored.binder_plddt
                    candidate.residue_plddt = list(scored.residue_plddt)
                    candidate.developability = scored.developability
                    candidate.constraints_met = scored.constraints
                    candidate.fitness = scored.fitness
            else:
                last = child.transitions.order_by("-at", "-id").first()
                candidate.error = f"{child.state}: {last.reason if last else child.error}"
            candidate.save()
            if candidate.fitness is not None:
                self.say(
                    f"{label}: pair ipTM {candidate.pair_iptm:.3f}, binder pLDDT "
                    f"{candidate.binder_plddt:.3f}, developability "
                    f"{candidate.developability:.2f}, constraints met "
                    f"{candidate.constraints_met:.0%}, fitness {candidate.fitness:.3f}"
                )
            else:
                self.say(f"{label}: {candidate.error}")

    def progress(self, candidates: list[Candidate], generation: int) -> None:
        params = self.params
        expected = params["population"] + (params["generations"] - 1) * (
            params["population"] - params["elites"]
        )
        states = dict(
            Job.objects.filter(candidate__in=[c.pk for c in candidates]).values_list("pk", "state")
        )
        done = sum(1 for c in candidates if c.scored_at is not None)
        running = sum(1 for s in states.values() if s == State.RUNNING)
        waiting = len(candidates) - done - running
        elapsed = (timezone.now() - self.campaign.started_at).total_seconds()
        left = ""
        if done:
            seconds = elapsed / done * max(0, expected - done)
            left = f", about {_duration(seconds)} left"
        message = (
            f"generation {generation + 1} of {params['generations']}: {done} done, "
            f"{running} running, {waiting} waiting{left}"
        )
        if message != self.campaign.progress_message:
            percent = min(99.0, 100.0 * done / expected)
            self.events.append({"type": "progress", "percent": percent, "message": message})

    def generation_ended(self, candidates: list[Candidate], generation: int, target_msa) -> None:
        params = self.params
        newest = [c for c in candidates if c.generation == generation]
        if all(c.fitness is None for c in newest):
            raise Ended(
                State.FAILED,
                f"every candidate of generation {generation + 1} failed",
                newest[0].error,
            )
        history = best_per_generation(candidates)
        population = population_of(candidates, generation, params["elites"])
        fitness = [s.fitness for s in population]
        self.events += [
            {
                "type": "metric",
                "step": generation + 1,
                "name": "best_fitness",
                "value": history[-1],
            },
            {
                "type": "metric",
                "step": generation + 1,
                "name": "mean_fitness",
                "value": sum(fitness) / len(fitness),
            },
        ]
        best = max((c for c in candidates if c.fitness is not None), key=lambda c: c.fitness)
        self.say(
            f"Generation {generation + 1} ended: best fitness {history[-1]:.3f} "
            f"({best.sequence}), mean {sum(fitness) / len(fitness):.3f}"
        )
        if generation + 1 >= params["generations"]:
            raise Ended(State.SUCCEEDED, f"{generation + 1} generations searched")
        if params["plateau"] and search.plateaued(history, params["plateau"]):
            raise Ended(
                State.SUCCEEDED,
                f"the best fitness gained less than 0.001 in {params['plateau']} generations; "
                f"stopped after generation {generation + 1}",
            )
        scored = [as_scored(c) for c in candidates if c.fitness is not None]
        elites = search.select_elites(scored, params["elites"])
        rate = search.mutation_rate(params["mutation_rate"], stagnant(history))
        children = search.breed(
            self.rng(generation + 1),
            elites,
            params["population"] - len(elites),
            rate=rate,
            crossover_rate=params["crossover_rate"],
            binder_type=params["binder_type"],
            length_min=params["length_min"],
            length_max=params["length_max"],
            seen={c.sequence for c in candidates},
        )
        self.submit(generation + 1, children, target_msa)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def as_scored(candidate: Candidate) -> search.Scored:
    met = 1.0 if candidate.constraints_met is None else candidate.constraints_met
    return search.Scored.of(
        candidate.sequence, candidate.pair_iptm, candidate.residue_plddt, constraints=met
    )


def best_per_generation(candidates: list[Candidate]) -> list[float]:
    """The best fitness of every candidate scored up to each generation: elites carry over,
    so it never decreases."""
    history, best = [], float("-inf")
    last = max(c.generation for c in candidates)
    for generation in range(last + 1):
        for c in candidates:
            if c.generation == generation and c.fitness is not None:
                best = max(best, c.fitness)
        history.append(best)
    return history


def population_of(candidates: list[Candidate], generation: int, elites: int) -> list:
    """A generation's population: the elites carried into it and its own scored candidates."""
    earlier = [
        as_scored(c) for c in candidates if c.generation < generation and c.fitness is not None
    ]
    carried = search.select_elites(earlier, elites) if earlier else []
    own = [as_scored(c) for c in candidates if c.generation == generation and c.fitness is not None]
    return carried + own


def stagnant(history: list[float]) -> int:
    """Generations since the best fitness last rose by 0.001 or more."""
    count = 0
    for previous, current in zip(history, history[1:], strict=False):
        count = 0 if current - previous >= 1e-3 else count + 1
    return count


def score(child: Job, sequence: str, constraints: list | None = None) -> search.Scored:
    """A finished candidate's scores: the binder-target pair ipTM of its best sample (the
    engine's `iptm_A_B` metric), its binder's per-residue pLDDT (the best sample's pLDDT
    over the binder's tokens) and the fraction of the campaign's distance constraints the
    best sample's structure meets."""
    pair_iptm = float(child.metrics[f"iptm_{TARGET}_{BINDER}"]["value"])
    artifacts = {a.name: a for a in child.artifacts.all()}
    met = 1.0
    if checks(constraints or []):
        cif = artifacts[f"{record_name(child.params, child.pk)}_model_0.cif"]
        with default_storage.open(cif.storage_key, "rb") as f:
            met = fraction_met(constraints, f.read().decode())
    with default_storage.open(artifacts["chains.json"].storage_key, "rb") as f:
        chains = json.load(f)["chains"]
    with default_storage.open(
        artifacts[f"plddt_{record_name(child.params, child.pk)}_model_0.npz"].storage_key
    ) as f:
        plddt = np.load(io.BytesIO(f.read()))["plddt"]
    start = 0
    for chain in chains:
        if chain["name"] == BINDER:
            tokens = [float(v) for v in plddt[start : start + chain["tokens"]]]
            break
        start += chain["tokens"]
    else:
        raise KeyError(f"no chain {BINDER} in its prediction")
    if len(tokens) != len(sequence):
        # A modified residue is a token per atom: spread the binder's mean over its residues.
        tokens = [sum(tokens) / len(tokens)] * len(sequence)
    return search.Scored.of(sequence, pair_iptm, tokens, constraints=met)


def results(campaign: Job) -> list[dict]:
    """The campaign's artifacts: every candidate ranked as CSV, the best structures (the
    candidates' own files, not copied), and its parameters and provenance."""
    candidates = list(campaign.candidates.select_related("job").order_by("generation", "index"))
    ranked = sorted(
        (c for c in candidates if c.fitness is not None), key=lambda c: (-c.fitness, c.sequence)
    )
    rank = {c.pk: i + 1 for i, c in enumerate(ranked)}
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(
        [
            "rank",
            "generation",
            "index",
            "sequence",
            "pair_iptm",
            "binder_plddt",
            "developability",
            "constraints_met",
            "fitness",
            "job",
            "error",
        ]
    )
    for c in sorted(candidates, key=lambda c: (rank.get(c.pk, 10**9), c.generation, c.index)):
        writer.writerow(
            [
                rank.get(c.pk, ""),
                c.generation + 1,
                c.index + 1,
                c.sequence,
                _figure(c.pair_iptm),
                _figure(c.binder_plddt),
                _figure(c.developability),
                _figure(c.constraints_met),
                _figure(c.fitness),
                c.job_id,
                c.error,
            ]
        )
    provenance = {
        "campaign": campaign.pk,
        "params": campaign.params,
        "candidates": len(candidates),
        "scored": len(ranked),
        "best_fitness_per_generation": best_per_generation(candidates) if candidates else [],
        "fitness": "(0.6 × pair ipTM + 0.3 × binder pLDDT + 0.1 × developability) × "
        "constraints met",
        "ended_at": timezone.now().isoformat(),
    }
    artifacts = [
        artifact_stored(campaign, "candidates.csv", table.getvalue().encode()),
        artifact_stored(campaign, "campaign.json", json.dumps(provenance, indent=2).encode()),
    ]
    for position, c in enumerate(ranked[:TOP_STRUCTURES], start=1):
        for structure in c.job.artifacts.filter(
            name__startswith=f"{record_name(c.job.params, c.job_id)}_model_0."
        ):
            suffix = structure.name.rsplit(".", 1)[1]
            artifacts.append(
                {
                    "name": f"rank-{position:02d}_{c.sequence}.{suffix}",
                    "size": structure.size,
                    "sha256": structure.sha256,
                    "storage_key": structure.storage_key,
                }
            )
    return artifacts


def _figure(value) -> str:
    return "" if value is None else f"{value:.4f}"
