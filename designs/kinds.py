"""`design`: a peptide binder design campaign against a target protein (docs/kinds/design.md).

The campaign is a job that holds no slot (a `ParentKind`): it is born running, and the
scheduler moves it on (designs/campaigns.py) while its candidates, child `predict` jobs, run on
the pool's warm engines like any job of its owner. Its parameters are checked at submission as
a prediction's would be: a sample candidate's input goes through the predict kind's own checks
(entities, constraints, boltz's parser with the portal's molecules, a node with the weights).

Chains of every candidate: the target is `A`, the binder `B`, a bicyclic binder's linker `L`.
"""

import random
import secrets

from django.conf import settings
from django.core.files.storage import default_storage
from rest_framework import serializers

from designs import search
from jobs.kinds import get_kind
from jobs.kinds.base import Page, ParentKind
from msa.kinds import PROTEIN, unavailable
from portal.errors import PortalError
from predictions.inputs import document_from_fasta, invalid
from predictions.kinds import PredictKind, seed_field

TARGET, BINDER, LINKER = "A", "B", "L"
# A three-armed linker by CCD code and the atoms of it each cysteine's SG bonds to.
LINKERS = {"SEZ": ("CD", "C1", "C2"), "29N": ("C16", "C19", "C25"), "BS3": ("BI1", "BI2", "BI3")}
MAX_LENGTH = 60


class DesignParams(serializers.Serializer):
    target = serializers.CharField(
        required=False,
        max_length=5000,
        help_text="The target protein's sequence (or give a FASTA upload as the job's input).",
        style={"base_template": "textarea.html"},
    )
    binder_type = serializers.ChoiceField(choices=search.BINDER_TYPES, default="linear")
    linker = serializers.ChoiceField(
        choices=list(LINKERS), default="SEZ", help_text="A bicyclic binder's linker (CCD code)."
    )
    glycan = serializers.RegexField(
        r"^[A-Z0-9]{1,5}$",
        required=False,
        help_text=(
            "A glycopeptide's sugar-bearing residue (the CCD code of the modified residue; "
            "the nodes' molecules must have it)."
        ),
    )
    length_min = serializers.IntegerField(min_value=5, max_value=MAX_LENGTH, default=10)
    length_max = serializers.IntegerField(min_value=5, max_value=MAX_LENGTH, default=20)
    population = serializers.IntegerField(min_value=2, max_value=256, default=16)
    generations = serializers.IntegerField(min_value=1, max_value=100, default=12)
    elites = serializers.IntegerField(min_value=1, max_value=255, default=4)
    mutation_rate = serializers.FloatField(min_value=0.01, max_value=1, default=0.25)
    crossover_rate = serializers.FloatField(min_value=0, max_value=1, default=0.1)
    plateau = serializers.IntegerField(
        min_value=0,
        max_value=100,
        default=5,
        help_text="Stop once the best fitness gained < 0.001 in this many generations (0: never).",
    )
    seed = seed_field()
    constraints = serializers.JSONField(
        required=False,
        help_text=(
            "Boltz constraints (contact, pocket, bond) applied to every candidate; the target "
            "is chain A, the binder chain B."
        ),
    )
    msa = serializers.ChoiceField(
        choices=["server", "local", "single"],
        required=False,
        help_text="The target's MSA, found once for every candidate (default: as a prediction).",
    )
    recycling_steps = serializers.IntegerField(min_value=0, max_value=20, default=3)
    sampling_steps = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples = serializers.IntegerField(min_value=1, max_value=25, default=1)
    step_scale = serializers.FloatField(min_value=0.1, max_value=10, default=1.5)

    def validate(self, attrs):
        if attrs["length_min"] > attrs["length_max"]:
            raise serializers.ValidationError({"length_max": "At least length_min."})
        if attrs["elites"] >= attrs["population"]:
            raise serializers.ValidationError({"elites": "Fewer than the population."})
        if attrs["binder_type"] == "glycopeptide" and "glycan" not in attrs:
            raise serializers.ValidationError({"glycan": "A glycopeptide names its residue."})
        return attrs


PREDICT_OPTIONS = ("recycling_steps", "sampling_steps", "diffusion_samples", "step_scale")


def candidate_input(params: dict, sequence: str, target_msa: int | str | None) -> dict:
    """A candidate's Boltz input: the target (with its MSA, an upload's id, or single
    sequence) and the binder in the campaign's form, the campaign's constraints added."""
    kind = params["binder_type"]
    binder = {"id": BINDER, "sequence": sequence.upper(), "msa": "empty"}
    if kind == "cyclic":
        binder["cyclic"] = True
    constraints = list(params.get("constraints") or [])
    if kind == "glycopeptide":
        binder["modifications"] = [
            {"position": i + 1, "ccd": params["glycan"]}
            for i, letter in enumerate(sequence)
            if letter.islower()
        ]
    target = {"id": TARGET, "sequence": params["target"], "msa": target_msa or "empty"}
    sequences = [{"protein": target}, {"protein": binder}]
    if kind == "bicyclic":
        sequences.append({"ligand": {"id": LINKER, "ccd": params["linker"]}})
        cysteines = [i + 1 for i, letter in enumerate(sequence) if letter == "C"]
        for position, atom in zip(cysteines, LINKERS[params["linker"]], strict=True):
            bond = {"atom1": [BINDER, position, "SG"], "atom2": [LINKER, 1, atom]}
            constraints.append({"bond": bond})
    document = {"version": 1, "sequences": sequences}
    if constraints:
        document["constraints"] = constraints
    return document


def candidate_params(params: dict, sequence: str, target_msa) -> dict:
    """A candidate's `predict` parameters: its input, the campaign's options and seed."""
    return {
        "input": candidate_input(params, sequence, target_msa),
        "seed": params["seed"],
        "msa": "single",
        **{name: params[name] for name in PREDICT_OPTIONS},
    }


class DesignKind(ParentKind):
    name = "design"
    drawn = ("seed",)  # chosen at random where none is given
    title = "Design peptide binders (Boltz-2)"
    page = Page(template="designs/candidates.html", form="designs/new.html")
    headline = (("best_fitness", "best fitness"),)
    min_inputs, max_inputs = 0, 1
    input_kinds = ("fasta",)
    Params = DesignParams

    def about_child(self, child) -> str:
        """A candidate's place in its campaign: its generation, fitness and rank."""
        from designs.models import Candidate

        candidate = Candidate.objects.filter(job=child).first()
        if candidate is None:
            return ""
        where = f"candidate {candidate.generation + 1}.{candidate.index + 1} {candidate.sequence}"
        if candidate.fitness is None:
            return f"{where}, {'failed' if candidate.error else 'not scored yet'}"
        scored = Candidate.objects.filter(campaign_id=child.parent_id, fitness__isnull=False)
        rank = scored.filter(fitness__gt=candidate.fitness).count() + 1
        return f"{where}, fitness {candidate.fitness:.3f}, rank {rank} of {scored.count()} scored"

    def unavailable(self) -> str | None:
        """Its candidates are predictions: it runs where they can."""
        return get_kind(PredictKind.name).unavailable()

    def validate(self, params: dict, inputs: list, *, user=None, project=None) -> dict:
        cleaned = self.clean_params(params)
        if ("target" in cleaned) == bool(inputs):
            raise invalid("Give the target once: its sequence, or a FASTA upload.")
        if inputs:
            with default_storage.open(inputs[0].storage_key, "rb") as f:
                document = document_from_fasta(f.read().decode("utf-8", "replace"))
            first = next(iter(document["sequences"][0].values()))
            cleaned["target"] = first["sequence"]
        cleaned["target"] = "".join(cleaned["target"].split()).upper()
        if not PROTEIN.match(cleaned["target"]):
            raise invalid("The target is a protein sequence, in one-letter codes.")
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        if "msa" not in cleaned:
            cleaned["msa"] = "server" if settings.PORTAL_MSA_SERVER_URL else "single"
        if cleaned["msa"] != "single":
            why = unavailable(cleaned["msa"])
            if why:
                raise PortalError(why, code="msa_unavailable")
        # A sample candidate goes through every check a prediction gets.
        sample = search.random_candidate(
            random.Random(cleaned["seed"]),  # noqa: S311  (reproducible, not a secret)
            cleaned["binder_type"],
            cleaned["length_min"],
            cleaned["length_max"],
        )
        get_kind(PredictKind.name).validate(
            candidate_params(cleaned, sample, None), [], user=user, project=project
        )
        return cleaned
