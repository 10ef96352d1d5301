"""`affinity`: Boltz-2's affinity model on a protein-ligand complex the scientist already has.

The complex is one upload (PDB or mmCIF) with the ligand named by its residue name
(`ligand_residue`, and `ligand_chain` where several chains have one), or two: the protein
structure and the ligand's pose (SDF, MOL or MOL2; 3D coordinates made by RDKit only where the
file has none, and said). predictions/complexes.py makes of it the Boltz input and the structure
boltz's affinity pass reads (`pre_affinity_<record>.npz`), and the slot's Boltz-2 engine runs
that pass as `boltz predict` runs it after its structure pass (predictions/engine.py:
`run_affinity`). In boltz 2.2.1 that pass crops the pocket around the ligand and samples the
complex's coordinates again (`sampling_steps_affinity`, `diffusion_samples_affinity`) before it
scores: it starts from this pose, it does not score it as it is.
"""

import tempfile
from pathlib import Path

from rest_framework import serializers

from jobs.kinds.base import EngineKind, Page, RunContext
from predictions import complexes
from predictions.inputs import invalid
from predictions.kinds import (
    PredictKind,
    check_with_boltz,
    copy_stored,
    mols_dir,
    record_field,
    seed_field,
)
from predictions.memory import memory_needed
from predictions.results import record_name

STRUCTURES = ("pdb", "mmcif")
LIGANDS = ("sdf", "mol2")
SUFFIX = {"pdb": ".pdb", "mmcif": ".cif", "sdf": ".sdf", "mol2": ".mol2"}


class AffinityParams(serializers.Serializer):
    ligand_residue = serializers.RegexField(
        r"^[A-Za-z0-9]{1,5}$",
        required=False,
        help_text="The ligand's residue name in the complex (one upload); not with a ligand file.",
    )
    ligand_chain = serializers.CharField(
        max_length=4, required=False, help_text="Its chain, where several chains have one."
    )
    seed = seed_field(
        "The same complex, options and seed give the same figures (chosen if absent)."
    )
    sampling_steps_affinity = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples_affinity = serializers.IntegerField(min_value=1, max_value=25, default=5)
    affinity_mw_correction = serializers.BooleanField(
        default=False, help_text="boltz's molecular weight correction of the affinity value."
    )
    record = record_field("The name its files go by (by default job- and the job's number).")


def read(uploads: list, params: dict) -> complexes.Complex:
    """The complex of a submission's uploads, read from copies of them (a 400 naming what is
    wrong)."""
    structures = [u for u in uploads if u.kind in STRUCTURES]
    ligands = [u for u in uploads if u.kind in LIGANDS]
    if len(structures) != 1 or len(ligands) > 1 or len(uploads) != len(structures) + len(ligands):
        raise invalid(
            "Give a complex (one PDB or mmCIF upload, with `ligand_residue`) or a protein "
            "structure and a ligand (PDB or mmCIF, and SDF, MOL or MOL2)."
        )
    if ligands and params.get("ligand_residue"):
        raise invalid("`ligand_residue` names the ligand in a complex; here the ligand is a file.")
    if not ligands and not params.get("ligand_residue"):
        raise invalid("Say which residue of the complex is the ligand: `ligand_residue`.")
    with tempfile.TemporaryDirectory(prefix="portal-complex-") as scratch:
        paths = []
        for upload in (*structures, *ligands):
            path = Path(scratch) / f"{upload.pk}{SUFFIX[upload.kind]}"
            paths.append(copy_stored(upload.storage_key, path))
        try:
            return complexes.read_complex(
                paths[0],
                ligand=paths[1] if ligands else None,
                residue=params.get("ligand_residue"),
                chain=params.get("ligand_chain"),
                mols=mols_dir(),
                label=structures[0].name,
            )
        except complexes.ComplexError as exc:
            message = str(exc)
            for upload, path in zip((*structures, *ligands), paths, strict=True):
                message = message.replace(path.name, upload.name)
            raise invalid(message) from None


class AffinityKind(EngineKind):
    name = "affinity"
    drawn = ("seed",)  # chosen at random where none is given
    title = "Binding affinity of a complex (Boltz-2)"
    gpu = "optional"
    shares_gpu = True
    requires = ("boltz",)
    min_inputs, max_inputs = 1, 2
    input_kinds = (*STRUCTURES, *LIGANDS)
    # The same engine as a prediction's: one warm Boltz-2 per slot serves both.
    engine = PredictKind.engine
    Params = AffinityParams
    page = Page(
        template="predictions/affinity.html",
        scripts=(
            "vendor/molstar/molstar.js",
            "predictions/affinity_table.js",
            "predictions/affinity.js",
        ),
        styles=("vendor/molstar/molstar.css", "predictions/prediction.css"),
        charts=False,
    )
    headline = (
        ("affinity_pred_value", "log10 IC50"),
        ("affinity_probability_binary", "binder p"),
    )

    def validate(self, params: dict, inputs: list, *, project=None, **context) -> dict:
        import secrets

        cleaned = self.clean_params(params)
        complex_ = read(inputs, cleaned)
        cleaned["input"] = complexes.document(complex_)
        cleaned["notes"] = complex_.notes
        check_with_boltz(cleaned["input"], {})
        why = PredictKind().unavailable()
        if why:
            from portal.errors import PortalError

            raise PortalError(f"{why}, then submit again.", code="boltz_unavailable")
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        return cleaned

    def warnings(self, params: dict) -> list[str]:
        """What was made up for the complex (a ligand's 3D coordinates)."""
        return list(params.get("notes", []))

    def default_name(self, params: dict, inputs: list) -> str:
        return "affinity of " + inputs[0].name.rsplit(".", 1)[0]

    def unavailable(self) -> str | None:
        return PredictKind().unavailable()

    def gpu_memory(self, params: dict, inputs: list) -> int:
        from predictions.kinds import tokens

        return memory_needed(tokens(params["input"]), 0)

    def page_context(self, job) -> dict:
        return {"record": record_name(job.params, job.pk)}

    def engine_options(self) -> dict:
        return PredictKind().engine_options()

    def engine_request(self, context: RunContext) -> dict:
        files = {}
        for item in context.inputs:
            path = item.path
            if path.suffix != SUFFIX[item.kind]:
                path = path.rename(path.with_name(path.name + SUFFIX[item.kind]))
            files[item.kind] = str(path)
        return {
            "mode": "affinity",
            "document": context.params["input"],
            "structure": files.get("pdb") or files.get("mmcif"),
            "ligand": files.get("sdf") or files.get("mol2"),
            "record": record_name(context.params, context.job_id),
            "work": str(context.scratch / "boltz"),
            "out": str(context.out),
            "params": context.params,
        }
