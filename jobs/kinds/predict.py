"""`predict`: a Boltz-2 structure prediction (boltz 2.2.1) of one input, a Boltz YAML or FASTA
upload, on the slot's resident engine (jobs/programs/boltz_engine.py).

The input is checked at submission with boltz's own parser (its schema, its molecules for the
residues and CCD codes, RDKit for SMILES), so a bad one gets a 400 naming the problem instead
of failing on a node. The engine options are boltz's, with its defaults; a job without a seed
gets one chosen now and stored, so any result can be predicted again.
"""

import contextlib
import io
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from rest_framework import serializers

from jobs.kinds.base import JobKind, RunContext
from portal.errors import PortalError


class PredictParams(serializers.Serializer):
    seed = serializers.IntegerField(
        min_value=0,
        max_value=2**32 - 1,
        required=False,
        help_text="The same input, options and seed give the same structure (chosen if absent).",
    )
    recycling_steps = serializers.IntegerField(min_value=0, max_value=20, default=3)
    sampling_steps = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples = serializers.IntegerField(
        min_value=1, max_value=25, default=1, help_text="Structures to sample (one file each)."
    )
    step_scale = serializers.FloatField(
        min_value=0.1,
        max_value=10,
        default=1.5,
        help_text="Lower gives more diverse samples (boltz's --step_scale).",
    )
    use_potentials = serializers.BooleanField(
        default=False, help_text="Steer the diffusion with physical potentials (slower)."
    )
    output_format = serializers.ChoiceField(choices=["mmcif", "pdb"], default="mmcif")
    sampling_steps_affinity = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples_affinity = serializers.IntegerField(min_value=1, max_value=25, default=5)


def invalid(message: str) -> PortalError:
    return PortalError(message, code="input_invalid")


def mols_dir() -> Path:
    return Path(settings.PORTAL_BOLTZ_CACHE).expanduser() / "mols"


def check_input(name: str, data: bytes):
    """Parse a Boltz YAML or FASTA as boltz does; returns its target, or raises a 400 with
    boltz's reason."""
    import yaml

    from portal.uploads.formats import FormatError, load_yaml

    mols = mols_dir()
    if not mols.is_dir():
        raise PortalError(
            f"This portal cannot check Boltz inputs: it has no molecules at {mols}. Run "
            "`manage.py boltzweights` here (or set PORTAL_BOLTZ_CACHE).",
            code="boltz_unavailable",
        )
    from rdkit import Chem

    # boltz keeps every RDKit property when it pickles molecules; so must this process.
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            if name.lower().endswith((".yaml", ".yml")):
                from boltz.data.parse.schema import parse_boltz_schema

                document = load_yaml(data)
                if not isinstance(document, dict):
                    raise invalid("A Boltz input is a mapping with `sequences`.")
                return parse_boltz_schema(Path(name).stem, document, {}, mols, True)
            from boltz.data.parse.fasta import parse_fasta

            path = Path(settings.WORKDIR) / "tmp" / f"check-{secrets.token_hex(8)}.fasta"
            path.write_bytes(data)
            try:
                return parse_fasta(path, {}, mols, True)
            finally:
                path.unlink(missing_ok=True)
    except PortalError:
        raise
    except (FormatError, yaml.YAMLError) as exc:
        raise invalid(f"The input does not parse: {exc}") from None
    except Exception as exc:  # boltz says what is wrong with its own exceptions
        detail = str(exc) or type(exc).__name__
        raise invalid(f"Boltz refuses this input: {detail}") from None


class PredictKind(JobKind):
    name = "predict"
    title = "Predict a structure (Boltz-2)"
    gpu = "optional"
    requires = ("boltz",)
    min_inputs = max_inputs = 1
    input_kinds = ("yaml", "fasta")
    engine = "jobs.programs.boltz_engine.BoltzEngine"
    Params = PredictParams

    def validate(self, params: dict, inputs: list, **context) -> dict:
        cleaned = self.clean_params(params)
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        upload = inputs[0]
        with default_storage.open(upload.storage_key, "rb") as f:
            check_input(upload.name, f.read())
        return cleaned

    def engine_options(self) -> dict:
        return {
            "cache": settings.PORTAL_BOLTZ_CACHE,
            "checkpoint": settings.PORTAL_BOLTZ_CHECKPOINT,
            "affinity_checkpoint": settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT,
        }

    def engine_request(self, context: RunContext) -> dict:
        return {
            "input": str(context.inputs[0]),
            "record": f"job-{context.job_id}",
            "work": str(context.scratch / "boltz"),
            "out": str(context.out),
            "params": context.params,
        }
