"""`predict`: a Boltz-2 structure prediction (boltz 2.2.1) of one input, a Boltz YAML or FASTA
upload or the same document as JSON (`params.input`), on the slot's resident engine
(jobs/programs/boltz_engine.py).

The input is checked at submission, entity by entity (jobs/kinds/boltz_input.py: letters,
SMILES with RDKit, constraints and affinity naming chains that exist) and then by boltz's own
parser (its molecules for residues and CCD codes), so a bad one gets a 400 naming the problem
instead of failing on a node. The normalised document is stored with the job as the input it
runs. The engine options are boltz's, with its defaults; a job without a seed
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
from jobs.kinds.boltz_input import check_document, document_from_fasta, invalid
from nodes.models import Node
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
    input = serializers.JSONField(
        required=False,
        help_text=(
            "The input as a Boltz YAML document in JSON (sequences, constraints, properties), "
            "instead of an uploaded YAML or FASTA."
        ),
    )
    sampling_steps_affinity = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples_affinity = serializers.IntegerField(min_value=1, max_value=25, default=5)


def mols_dir() -> Path:
    return Path(settings.PORTAL_BOLTZ_CACHE).expanduser() / "mols"


def document_of(upload) -> dict:
    """The Boltz document an upload holds (YAML, or boltz's FASTA)."""
    from portal.uploads.formats import FormatError, load_yaml

    with default_storage.open(upload.storage_key, "rb") as f:
        data = f.read()
    if upload.kind == "fasta":
        return document_from_fasta(data.decode("utf-8", "replace"))
    try:
        return load_yaml(data)
    except FormatError as exc:
        raise invalid(f"{upload.name}: {exc}") from None


def tokens(document: dict) -> int:
    """How many tokens boltz makes of the document: a residue of a polymer, an atom of a
    ligand (or of a modified residue), each."""
    from boltz.data import const

    target = parse(document)
    ligand = const.chain_type_ids["NONPOLYMER"]
    return int(
        sum(
            chain["atom_num"] if chain["mol_type"] == ligand else chain["res_num"]
            for chain in target.structure.chains
        )
    )


def parse(document: dict):
    """boltz's own parse of a checked document, with this portal's molecules."""
    import rdkit.Chem.Descriptors  # noqa: F401  (boltz reads it as AllChem.Descriptors for affinity)
    from boltz.data.parse.schema import parse_boltz_schema
    from rdkit import Chem

    # boltz keeps every RDKit property when it pickles molecules; so must this process.
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return parse_boltz_schema("input", document, {}, mols_dir(), True)


def check_with_boltz(document: dict) -> None:
    """boltz's own parser over the document (its molecules for residues and CCD codes):
    what the portal's checks cannot see, such as a CCD code boltz does not know."""
    mols = mols_dir()
    if not mols.is_dir():
        raise PortalError(
            f"This portal cannot check Boltz inputs: it has no molecules at {mols}. Run "
            "`manage.py boltzweights` here (or set PORTAL_BOLTZ_CACHE).",
            code="boltz_unavailable",
        )
    try:
        parse(document)
    except Exception as exc:  # boltz says what is wrong with its own exceptions
        raise invalid(f"Boltz refuses this input: {exc or type(exc).__name__}") from None


class PredictKind(JobKind):
    name = "predict"
    title = "Predict a structure (Boltz-2)"
    gpu = "optional"
    requires = ("boltz",)
    min_inputs, max_inputs = 0, 1
    input_kinds = ("yaml", "fasta")
    engine = "jobs.programs.boltz_engine.BoltzEngine"
    Params = PredictParams

    def validate(self, params: dict, inputs: list, **context) -> dict:
        cleaned = self.clean_params(params)
        if ("input" in cleaned) == bool(inputs):
            raise invalid("Give the input once: a YAML or FASTA upload, or `params.input`.")
        document = cleaned["input"] if "input" in cleaned else document_of(inputs[0])
        cleaned["input"] = check_document(document)
        check_with_boltz(cleaned["input"])
        if not any(node.can_run("boltz") for node in Node.objects.filter(enabled=True)):
            raise PortalError(
                "No node of this portal has the Boltz-2 weights: run `manage.py boltzweights` "
                "on a node (it downloads them into its PORTAL_BOLTZ_CACHE), then submit again.",
                code="boltz_unavailable",
            )
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        return cleaned

    def gpu_memory(self, params: dict, inputs: list) -> int:
        """GPU memory a prediction needs, from its tokens (a residue, or a ligand's atom, each):
        `4 GiB + tokens² × 9 KiB`. The pair representation grows with tokens squared; the
        factor is fitted under the limits users report for boltz 2 (single sequence): about
        1,300 tokens on 24 GB, 2,300 on 48 GB, 2,000 to 2,500 on 80 GB (boltz issues #236,
        #575, #106), so each is predicted to fit; 4 GiB holds the weights and the context. Deep
        MSAs add more (#611), which this does not count yet."""
        return 4 * 2**30 + tokens(params["input"]) ** 2 * 9 * 2**10

    def engine_options(self) -> dict:
        return {
            "cache": settings.PORTAL_BOLTZ_CACHE,
            "checkpoint": settings.PORTAL_BOLTZ_CHECKPOINT,
            "affinity_checkpoint": settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT,
        }

    def engine_request(self, context: RunContext) -> dict:
        return {
            "document": context.params["input"],
            "record": f"job-{context.job_id}",
            "work": str(context.scratch / "boltz"),
            "out": str(context.out),
            "params": context.params,
        }
