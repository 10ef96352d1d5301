"""`screen`: one target against many ligands, ranked by Boltz-2's predicted affinity.

Two modes. `cofold`: the target's sequence (`target`, its MSA as a prediction's: `msa`) and a
file of ligands (CSV/TSV with `smiles` and `name`, or SDF); each ligand is a child `predict`
job of the target and the ligand with affinity asked, on the pool's warm engines, the target's
MSA found once for all. `poses`: a target structure (PDB or mmCIF) and an SDF of docked poses;
each pose is a child `affinity` job (predictions/affinity.py). A screen holds no slot; it moves
on from the scheduler (screens/screening.py), submitting its ligands in batches, and ends when
every ligand has ended, with its ranking.
"""

import re
import secrets

from django.conf import settings
from rest_framework import serializers

from jobs.kinds import get_kind
from jobs.kinds.base import Page, ParentKind
from msa.kinds import unavailable as msa_unavailable
from portal.errors import PortalError
from predictions.kinds import msa_field, seed_field
from screens.ligands import invalid, read_ligands

PROTEIN = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]+$")
TARGET, LIGAND = "A", "B"
STRUCTURES, TABLES = ("pdb", "mmcif"), ("csv", "tsv", "smi", "sdf")
# The options its children take, as boltz names them.
PREDICT_OPTIONS = ("recycling_steps", "sampling_steps", "diffusion_samples")
AFFINITY_OPTIONS = ("sampling_steps_affinity", "diffusion_samples_affinity")


class ScreenParams(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["cofold", "poses"],
        help_text=(
            "`cofold`: predict each ligand with the target (Boltz-2 with affinity); `poses`: "
            "Boltz-2's affinity model on each docked pose."
        ),
    )
    target = serializers.CharField(
        max_length=5000, required=False, help_text="cofold: the target protein's sequence."
    )
    msa = msa_field("cofold: where the target's MSA comes from (searched once for all ligands).")
    seed = seed_field()
    recycling_steps = serializers.IntegerField(min_value=0, max_value=20, default=3)
    sampling_steps = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples = serializers.IntegerField(min_value=1, max_value=25, default=1)
    sampling_steps_affinity = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples_affinity = serializers.IntegerField(min_value=1, max_value=25, default=5)


def cofold_params(params: dict, smiles: str, target_msa) -> dict:
    """A ligand's `predict` parameters: the target and the ligand, affinity asked for it."""
    document = {
        "version": 1,
        "sequences": [
            {"protein": {"id": TARGET, "sequence": params["target"], "msa": target_msa or "empty"}},
            {"ligand": {"id": LIGAND, "smiles": smiles}},
        ],
        "properties": [{"affinity": {"binder": LIGAND}}],
    }
    return {
        "input": document,
        "seed": params["seed"],
        "msa": "single",
        **{name: params[name] for name in (*PREDICT_OPTIONS, *AFFINITY_OPTIONS)},
    }


def pose_params(params: dict) -> dict:
    """A pose's `affinity` parameters."""
    return {"seed": params["seed"], **{name: params[name] for name in AFFINITY_OPTIONS}}


class ScreenKind(ParentKind):
    name = "screen"
    drawn = ("seed",)  # chosen at random where none is given
    title = "Screen ligands against a target (Boltz-2 affinity)"
    page = Page(
        template="screens/screen.html",
        scripts=("predictions/affinity_table.js", "jobs/table.js", "screens/screen.js"),
        charts=False,  # its figures are its ligands' (the histogram and the table)
    )
    headline = (("best_affinity_pred_value", "best log10 IC50"),)
    min_inputs, max_inputs = 1, 2
    input_kinds = (*STRUCTURES, *TABLES)
    Params = ScreenParams

    def about_child(self, child) -> str:
        from screens.models import Ligand

        ligand = Ligand.objects.filter(job=child).first()
        if ligand is None:
            return ""
        where = f"ligand {ligand.index + 1} {ligand.name}"
        if ligand.affinity_pred_value is None:
            return f"{where}, {'failed' if ligand.error else 'not scored yet'}"
        scored = Ligand.objects.filter(screen_id=child.parent_id, affinity_pred_value__isnull=False)
        rank = scored.filter(affinity_pred_value__lt=ligand.affinity_pred_value).count() + 1
        return (
            f"{where}, log10 IC50 {ligand.affinity_pred_value:.3f}, "
            f"rank {rank} of {scored.count()} scored"
        )

    def unavailable(self) -> str | None:
        return get_kind("predict").unavailable()

    def warnings(self, params: dict) -> list[str]:
        return list(params.get("notes", []))

    def default_name(self, params: dict, inputs: list) -> str:
        ligands = next(u for u in inputs if u.kind in TABLES)
        return f"{params['mode']} screen of {ligands.name.rsplit('.', 1)[0]}"

    def validate(self, params: dict, inputs: list, *, user=None, project=None) -> dict:
        cleaned = self.clean_params(params)
        tables = [u for u in inputs if u.kind in TABLES]
        structures = [u for u in inputs if u.kind in STRUCTURES]
        if cleaned["mode"] == "cofold":
            if len(tables) != 1 or structures:
                raise invalid(
                    "A cofold screen takes one upload: its ligands (CSV, TSV, SMILES or SDF)."
                )
            target = "".join(cleaned.get("target", "").split()).upper()
            if not PROTEIN.match(target):
                raise invalid("A cofold screen needs `target`, a protein sequence (one-letter).")
            cleaned["target"] = target
            if "msa" not in cleaned:
                cleaned["msa"] = "server" if settings.PORTAL_MSA_SERVER_URL else "single"
            if cleaned["msa"] != "single" and (why := msa_unavailable(cleaned["msa"])):
                raise PortalError(why, code="msa_unavailable")
        else:
            if len(structures) != 1 or len(tables) != 1 or tables[0].kind != "sdf":
                raise invalid(
                    "A poses screen takes two uploads: the target's structure (PDB or mmCIF) "
                    "and its poses (SDF)."
                )
            if "target" in cleaned or "msa" in cleaned:
                raise invalid("A poses screen takes its target from the structure upload.")
        ligands, notes = read_ligands(tables[0])
        if cleaned["mode"] == "cofold" and cleaned["msa"] == "single":
            notes.insert(
                0,
                "The target is predicted without an MSA (single sequence), with every ligand: "
                "Boltz-2 is usually less accurate so. The MSA source server or local searches "
                "one, once for all ligands.",
            )
        cleaned["ligands"] = len(ligands)
        cleaned["notes"] = notes
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        if cleaned["mode"] == "cofold":
            # The first ligand goes through every check its prediction will get.
            get_kind("predict").validate(
                cofold_params(cleaned, ligands[0].smiles, None), [], user=user, project=project
            )
        elif why := self.unavailable():
            raise PortalError(f"{why}, then submit again.", code="boltz_unavailable")
        return cleaned
