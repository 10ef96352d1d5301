"""`predict`: a Boltz-2 structure prediction (boltz 2.2.1) of one input, a Boltz YAML or FASTA
upload or the same document as JSON (`params.input`), on the slot's resident engine
(predictions/engine.py).

The input is checked at submission, entity by entity (predictions/inputs.py: letters,
SMILES with RDKit, constraints and affinity naming chains that exist) and then by boltz's own
parser (its molecules for residues and CCD codes; the templates parsed as the node will), so a
bad one gets a 400 naming the problem instead of failing on a node. MSAs and templates are
uploads of the project named by id in the document (a protein's `msa`, a template's `cif` or
`pdb`), or, for a protein that names none, found by an `msa` job on a CPU slot before the
prediction may take a GPU (the job's `msa` parameter: the configured server, a node's local
database, or single sequence; msa/kinds.py): the prediction waits for it in `pending`, and its
files join the prediction's inputs. An uploaded MSA is read with boltz's own parser at
submission (its first row must be its chain's sequence, every row as long); uploaded MSAs and
templates join the job's inputs, so the node fetches them beside the input and they cannot be
deleted while the job exists. The normalised document is stored
with the job as the input it runs. The engine options are boltz's, with its defaults; a job
without a seed gets one chosen now and stored, so any result can be predicted again.
"""

import contextlib
import csv
import functools
import importlib
import io
import re
import secrets
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from rest_framework import serializers

from jobs.kinds.base import Child, EngineKind, Page, RunContext
from msa import protocol as msa
from nodes.models import Node
from portal.errors import PortalError
from portal.uploads.models import Upload
from predictions.inputs import (
    ambiguous_letters,
    check_document,
    document_from_fasta,
    fasta_records,
    invalid,
    naming_ccd,
    references,
    with_files,
    with_msas,
    without_msa,
)
from predictions.memory import MAX_MSA_SEQS, memory_needed
from predictions.results import record_name

# What a reference in a document may name, by upload kind; and the suffix boltz wants for each.
REFERENCE_KINDS = {"msa": ("a3m", "csv"), "cif": ("mmcif",), "pdb": ("pdb",)}
SUFFIX = {"a3m": ".a3m", "csv": ".csv", "mmcif": ".cif", "pdb": ".pdb"}
# What boltz says of a CCD code its molecules lack.
MISSING_CCD = re.compile(r"CCD component (\S+) not found")
# A record name: what boltz takes from an input file's name, safe as a file name anywhere.
RECORD = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}$"


# The parameters the kinds that predict share, each declared here once (a field object belongs
# to one serializer: each kind gets its own, with its own words).
def seed_field(help_text: str = "") -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=0, max_value=2**32 - 1, required=False, help_text=help_text or None
    )


def msa_field(help_text: str) -> serializers.ChoiceField:
    """Where the MSA of a protein that names none comes from; by default the kind decides."""
    return serializers.ChoiceField(
        choices=["server", "local", "single"], required=False, help_text=help_text
    )


def record_field(help_text: str) -> serializers.RegexField:
    return serializers.RegexField(RECORD, required=False, help_text=help_text)


class PredictParams(serializers.Serializer):
    seed = seed_field(
        "The same input, options and seed give the same structure (chosen if absent)."
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
    msa = msa_field(
        "Where the MSA of a protein that names none comes from: the configured MSA server, "
        "a node's local database, or none (single sequence). Default: the server where "
        "one is configured, else single sequence."
    )
    per_record = serializers.BooleanField(
        default=False,
        help_text=(
            "One prediction per record of the FASTA (per entity of the input), each a job of "
            "its own, as `boltz predict` over a directory of single-chain files; instead of "
            "one complex of all of them."
        ),
    )
    sampling_steps_affinity = serializers.IntegerField(min_value=1, max_value=1000, default=200)
    diffusion_samples_affinity = serializers.IntegerField(min_value=1, max_value=25, default=5)
    affinity_mw_correction = serializers.BooleanField(
        default=False, help_text="boltz's molecular weight correction of the affinity value."
    )
    record = record_field(
        "The name boltz gives the prediction's files (`<record>_model_0.cif`, "
        "`confidence_<record>_model_0.json`, …), as `boltz predict` names them after the "
        "input file: `portal predict` sends the file's name without its suffix. Letters, "
        "digits and `_.+-`, up to 100; by default `job-` and the job's number."
    )


def mols_dir() -> Path:
    return Path(settings.PORTAL_BOLTZ_CACHE).expanduser() / "mols"


def read_text(upload) -> str:
    with default_storage.open(upload.storage_key, "rb") as f:
        return f.read().decode("utf-8", "replace")


def document_of(upload) -> dict:
    """The Boltz document an upload holds (YAML, or boltz's FASTA)."""
    from portal.uploads.formats import FormatError, load_yaml

    if upload.kind == "fasta":
        return document_from_fasta(read_text(upload))
    with default_storage.open(upload.storage_key, "rb") as f:
        data = f.read()
    try:
        return load_yaml(data)
    except FormatError as exc:
        raise invalid(f"{upload.name}: {exc}") from None


def tokens(document: dict) -> int:
    """How many tokens boltz makes of the document: a residue of a polymer, an atom of a
    ligand (or of a modified residue), each."""
    from boltz.data import const

    # Templates add no tokens (and are files the parser would read).
    target = parse({key: value for key, value in document.items() if key != "templates"})
    ligand = const.chain_type_ids["NONPOLYMER"]
    return int(
        sum(
            chain["atom_num"] if chain["mol_type"] == ligand else chain["res_num"]
            for chain in target.structure.chains
        )
    )


def load_parser() -> None:
    """boltz's parser and what it imports (torch, RDKit, scikit-learn: about 1.3 s of a core),
    loaded once per process."""
    for module in ("boltz.data.parse.schema", "boltz.data.parse.a3m", "boltz.data.parse.csv"):
        importlib.import_module(module)


def parse(document: dict):
    """boltz's own parse of a checked document, with this portal's molecules."""
    from boltz.data.parse.schema import parse_boltz_schema
    from rdkit import Chem
    from rdkit.Chem import AllChem, Descriptors

    # boltz reads Descriptors as an attribute of AllChem (for affinity), which AllChem has only
    # when Descriptors was imported before it; make it so whatever this process imported first.
    AllChem.Descriptors = Descriptors

    # boltz keeps every RDKit property when it pickles molecules; so must this process.
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return parse_boltz_schema("input", document, {}, mols_dir(), True)


def check_with_boltz(document: dict, uploads: dict[int, Upload]) -> None:
    """boltz's own parser over the document (its molecules for residues and CCD codes, the
    templates read from copies of their uploads): what the portal's checks cannot see, such
    as a CCD code boltz does not know or a template residue it cannot build."""
    mols = mols_dir()
    if not mols.is_dir():
        raise PortalError(
            f"This portal cannot check Boltz inputs: it has no molecules at {mols}. Run "
            "`manage.py boltzweights` here (or set PORTAL_BOLTZ_CACHE).",
            code="boltz_unavailable",
        )
    with tempfile.TemporaryDirectory(prefix="portal-boltz-") as scratch:
        files = {}
        for pk, upload in uploads.items():
            # MSAs are read at preparation, not by the parser: a name with the suffix will do.
            path = Path(scratch) / f"{pk}{SUFFIX[upload.kind]}"
            if upload.kind in ("mmcif", "pdb"):
                copy_stored(upload.storage_key, path)
            files[pk] = str(path)

        def refusal(document: dict) -> str | None:
            try:
                parse(with_files(document, files))
            except Exception as exc:  # boltz says what is wrong with its own exceptions
                reason = str(exc).replace(scratch + "/", "")
                return reason or f"its parser stopped with {type(exc).__name__}"
            return None

        reason = refusal(document)
        if reason is None:
            return
        # When the templates are what boltz refuses, name the first it cannot use.
        templates = document.get("templates") or []
        if templates and refusal({**document, "templates": []}) is None:
            for number, template in enumerate(templates, start=1):
                alone = refusal({**document, "templates": [template]})
                if alone is not None:
                    upload = uploads[template.get("cif", template.get("pdb"))]
                    raise invalid(f"Template {number}: boltz cannot use '{upload.name}': {alone}")
        missing = MISSING_CCD.search(reason)
        if missing:
            code = missing.group(1)
            where = " and ".join(naming_ccd(document, code)) or "The input"
            raise invalid(
                f"{where}: CCD code {code}: this portal's molecules lack it "
                f"({mols_dir()}); give the ligand as SMILES instead, or ask an operator to add "
                "the code to the molecules."
            )
        raise invalid(f"Boltz refuses this input: {reason}")


def copy_stored(storage_key: str, path: Path) -> Path:
    """A local copy of a stored file (boltz's parsers read paths)."""
    with default_storage.open(storage_key, "rb") as source, open(path, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    return path


def referenced_uploads(document: dict, project) -> dict[int, Upload]:
    """The uploads the document names, checked: of the job's project and of the kind each
    place takes, each MSA one boltz reads whose rows fit its chain."""
    wanted = references(document)
    found = Upload.objects.filter(project=project, pk__in=[r.upload for r in wanted])
    found = {u.pk: u for u in found}
    for ref in wanted:
        upload = found.get(ref.upload)
        if upload is None:
            raise invalid(f"{ref.where}: there is no upload {ref.upload} in this project.")
        kinds = REFERENCE_KINDS[ref.what]
        if upload.kind not in kinds:
            raise invalid(
                f"{ref.where}: '{upload.name}' is {upload.kind.upper()}; "
                f"`{ref.what}` takes {' or '.join(k.upper() for k in kinds)}."
            )
        if ref.what == "msa":
            check_msa(upload, ref.sequence, ref.where)
    return found


@functools.lru_cache(maxsize=64)
def _msa_rows(sha256: str, storage_key: str, kind: str) -> tuple[list[int], list[int]]:
    """An uploaded A3M or CSV as boltz reads it (its first MAX_MSA_SEQS distinct rows): the
    first row's residues (token ids) and every row's length. Kept by digest, so the checks
    and the memory estimate of one submission read it once."""
    from boltz.data.parse.a3m import parse_a3m
    from boltz.data.parse.csv import parse_csv

    with tempfile.TemporaryDirectory(prefix="portal-msa-") as scratch:
        path = Path(scratch) / f"msa{SUFFIX[kind]}"
        copy_stored(storage_key, path)
        if kind == "csv":
            msa = parse_csv(path, max_seqs=MAX_MSA_SEQS)
        else:
            msa = parse_a3m(path, taxonomy=None, max_seqs=MAX_MSA_SEQS)
    lengths = (msa.sequences["res_end"] - msa.sequences["res_start"]).tolist()
    first = msa.residues["res_type"][: lengths[0]].tolist() if lengths else []
    return first, lengths


def msa_rows(upload: Upload) -> tuple[list[int], list[int]]:
    return _msa_rows(upload.sha256, upload.storage_key, upload.kind)


def msa_as_a3m(upload: Upload) -> str:
    """An uploaded MSA as A3M text: an A3M as it is, a boltz CSV (`key,sequence` rows) with
    each row a record named by its pairing key."""
    with default_storage.open(upload.storage_key, "rb") as source:
        text = source.read().decode("utf-8", errors="replace")
    if upload.kind == "a3m":
        return text
    rows = csv.DictReader(io.StringIO(text))
    return "".join(
        f">{number}_key{row.get('key', '')}\n{row.get('sequence', '')}\n"
        for number, row in enumerate(rows)
    )


def searched_as_a3m(job) -> dict[str, tuple[str, str]]:
    """The MSAs a job's search found, by chain, as AlphaFold 3 takes them: (unpaired, paired)
    A3M. An A3M is the unpaired MSA; boltz's CSV splits into its paired rows (keyed 0, 1, …:
    the query first) and, after the query, its unpaired rows (keyed -1)."""
    found = {}
    for artifact in msa.found(job):
        chain = msa.chain_of(artifact.name)
        with default_storage.open(artifact.storage_key, "rb") as source:
            text = source.read().decode("utf-8", errors="replace")
        if not artifact.name.endswith(".csv"):
            found[chain] = (text, "")
            continue
        rows = [
            (row.get("key", ""), row.get("sequence", ""))
            for row in csv.DictReader(io.StringIO(text))
        ]
        paired = [sequence for key, sequence in rows if key != "-1"]
        unpaired = paired[:1] + [sequence for key, sequence in rows if key == "-1"]
        found[chain] = tuple(
            "".join(f">{number}\n{sequence}\n" for number, sequence in enumerate(part))
            for part in (unpaired, paired)
        )
    return found


def check_msa(upload: Upload, sequence: str, where: str) -> None:
    """An MSA's rows fit its chain: the first is the chain's sequence, all are as long."""
    from boltz.data import const

    try:
        first, lengths = msa_rows(upload)
    except KeyError as exc:
        raise invalid(
            f"{where}: the MSA '{upload.name}' has a letter boltz does not know: {exc}."
        ) from None
    except Exception as exc:  # boltz's own reason (a CSV without key and sequence columns…)
        raise invalid(f"{where}: boltz cannot read the MSA '{upload.name}': {exc}") from None
    if not lengths:
        raise invalid(f"{where}: the MSA '{upload.name}' has no rows.")
    expected = [const.token_ids[const.prot_letter_to_token[letter]] for letter in sequence]
    if first != expected:
        raise invalid(
            f"{where}: the first row of the MSA '{upload.name}' is not this chain's sequence "
            "(an MSA starts with its query)."
        )
    for row, length in enumerate(lengths, start=1):
        if length != len(sequence):
            raise invalid(
                f"{where}: row {row} of the MSA '{upload.name}' has {length} residues "
                f"outside insertions; its chain has {len(sequence)}."
            )


class DocumentInput:
    """What a kind that takes a structure prediction's input has (a Boltz YAML or FASTA upload,
    or `params.input`; the MSAs the document names or its search finds): `predict` and
    `af3`."""

    def clean_document(self, cleaned: dict, inputs: list, project) -> dict:
        """The input, given once, checked by this portal and by boltz's own parser."""
        if ("input" in cleaned) == bool(inputs):
            raise invalid("Give the input once: a YAML or FASTA upload, or `params.input`.")
        document = cleaned["input"] if "input" in cleaned else document_of(inputs[0])
        document = check_document(document)
        check_with_boltz(document, referenced_uploads(document, project))
        return document

    def split(self, params: dict, inputs: list) -> list[tuple[str, dict, list]] | None:
        """With `per_record`: one prediction per record of a FASTA upload (each read alone, so
        a plain header's protein is chain A), or per entity of `params.input`; named by the
        record's header (or the entity's chain)."""
        if not params.get("per_record"):
            return None
        single = {**params, "per_record": False}
        if len(inputs) == 1 and "input" not in params and inputs[0].kind == "fasta":
            stem = inputs[0].name.rsplit(".", 1)[0]
            records = fasta_records(read_text(inputs[0]))
            if not records:
                raise invalid(f"{inputs[0].name}: no FASTA records.")
            return [
                (
                    f"{stem} {header}",
                    {**single, "input": document_from_fasta(f">{header}\n{seq}")},
                    [],
                )
                for header, seq in records
            ]
        document = params.get("input") if inputs == [] else None
        if not isinstance(document, dict) or not isinstance(document.get("sequences"), list):
            raise invalid(
                "One prediction per record takes a FASTA upload, or `params.input` with its "
                "`sequences`."
            )
        tied = [
            section
            for section in ("constraints", "templates", "properties")
            if document.get(section)
        ]
        if tied:
            raise invalid(
                f"One prediction per record predicts each entity alone; this input's "
                f"{', '.join(tied)} tie its entities together. Submit it as one complex."
            )
        parts = []
        for item in document["sequences"]:
            body = next(iter(item.values())) if isinstance(item, dict) and item else {}
            chain = body.get("id") if isinstance(body, dict) else None
            parts.append(
                (f"chain {chain}", {**single, "input": {**document, "sequences": [item]}}, [])
            )
        return parts

    def default_name(self, params: dict, inputs: list) -> str:
        """The input file's name without its suffix, or the first chain and its start."""
        given = [u for u in inputs if u.kind in self.input_kinds]
        if given:
            return given[0].name.rsplit(".", 1)[0]
        first = params["input"]["sequences"][0]
        kind, body = next(iter(first.items()))
        ids = body["id"] if isinstance(body["id"], list) else [body["id"]]
        what = body.get("sequence") or body.get("smiles") or body.get("ccd") or kind
        what = what if isinstance(what, str) else ", ".join(what)
        more = len(params["input"]["sequences"]) - 1
        return f"{ids[0]}: {what[:16]}{'…' if len(what) > 16 else ''}" + (
            f" and {more} more" if more else ""
        )

    def warnings(self, params: dict) -> list[str]:
        return ambiguous_letters(params["input"])

    def again(self, job) -> tuple[dict, list[int]]:
        """The input as the document it was read into (the form edits it), not its upload."""
        params, _ = super().again(job)
        return params, []

    def page_context(self, job) -> dict:
        """The name its files go by, and the protein chains predicted without an MSA (single
        sequence), for the page to say so: an MSA of `empty`, or none where the job's MSA
        source was single sequence."""
        document = job.params.get("input") or {}
        single = []
        for item in document.get("sequences") or []:
            body = item.get("protein") if isinstance(item, dict) else None
            if not isinstance(body, dict):
                continue
            msa = body.get("msa")
            if msa == "empty" or (msa is None and job.params.get("msa") == "single"):
                ids = body.get("id")
                single += ids if isinstance(ids, list) else [ids]
        return {
            "record": record_name(job.params, job.pk),
            "single_sequence": [str(chain) for chain in single],
        }

    def first_children(self, params: dict) -> list[Child]:
        """The search of the MSAs of the proteins that name none (unless single sequence)."""
        missing = without_msa(params["input"])
        if params.get("msa", "single") == "single" or not missing:
            return []
        name = f"MSAs of chain {', '.join(chain for chain, _ in missing)}"
        return [msa.search(missing, params["msa"], name)]

    def extra_inputs(self, job) -> list[dict]:
        """The MSAs its search found (one file per chain)."""
        return [
            {"name": a.name, "storage_key": a.storage_key, "sha256": a.sha256}
            for a in msa.found(job)
        ]

    def named_uploads(self, params: dict) -> list[int]:
        return [ref.upload for ref in references(params["input"])]

    def warm_up(self) -> None:
        load_parser()


class PredictKind(DocumentInput, EngineKind):
    name = "predict"
    drawn = ("seed",)  # chosen at random where none is given
    title = "Predict a structure (Boltz-2)"
    gpu = "optional"
    shares_gpu = True
    requires = ("boltz",)
    min_inputs, max_inputs = 0, 1
    input_kinds = ("yaml", "fasta")
    engine = "predictions.engine.BoltzEngine"
    Params = PredictParams
    page = Page(
        template="predictions/detail.html",
        scripts=(
            "vendor/molstar/molstar.js",
            "predictions/affinity_table.js",
            "predictions/prediction.js",
        ),
        styles=("vendor/molstar/molstar.css", "predictions/prediction.css"),
        charts=False,  # its figures are the structure's, shown by its own part
        form="predictions/new.html",
    )
    headline = (
        ("confidence_score", "confidence"),
        ("iptm", "ipTM"),
        ("complex_plddt", "pLDDT"),
        ("affinity_probability_binary", "binder p"),
    )

    def validate(self, params: dict, inputs: list, *, project=None, **context) -> dict:
        cleaned = self.clean_params(params)
        cleaned["input"] = self.clean_document(cleaned, inputs, project)
        why = self.unavailable()
        if why:
            raise PortalError(f"{why}, then submit again.", code="boltz_unavailable")
        if "seed" not in cleaned:
            cleaned["seed"] = secrets.randbelow(2**32)
        if "msa" not in cleaned:
            cleaned["msa"] = "server" if settings.PORTAL_MSA_SERVER_URL else "single"
        return cleaned

    def unavailable(self) -> str | None:
        if any(node.can_run("boltz") for node in Node.objects.filter(enabled=True)):
            return None
        return (
            "No node of this portal has the Boltz-2 weights: an operator runs "
            "`manage.py boltzweights` on a node (it downloads them into its "
            "PORTAL_BOLTZ_CACHE)"
        )

    def form_context(self, project) -> dict:
        """Where a chain's MSA can come from, for the form to say so."""
        return {
            "msa_server": bool(settings.PORTAL_MSA_SERVER_URL),
            "msa_local": any(n.can_run("msa_local") for n in Node.objects.filter(enabled=True)),
        }

    def gpu_memory(self, params: dict, inputs: list) -> int:
        """GPU memory a prediction needs (`memory_needed`, predictions/memory.py), from
        its tokens and the depth of its deepest uploaded MSA; a protein whose MSA is still to
        be searched counts as the most rows boltz reads."""
        msas = {ref.upload for ref in references(params["input"]) if ref.what == "msa"}
        depth = max((len(msa_rows(u)[1]) for u in inputs if u.pk in msas), default=0)
        if params.get("msa", "single") != "single" and without_msa(params["input"]):
            depth = MAX_MSA_SEQS  # a search's depth is known only once it ran: the most read
        return memory_needed(tokens(params["input"]), depth)

    def engine_options(self) -> dict:
        return {
            "cache": settings.PORTAL_BOLTZ_CACHE,
            "checkpoint": settings.PORTAL_BOLTZ_CHECKPOINT,
            "affinity_checkpoint": settings.PORTAL_BOLTZ_AFFINITY_CHECKPOINT,
        }

    def engine_request(self, context: RunContext) -> dict:
        # The uploads the document names, fetched beside the input; boltz tells an MSA's
        # format by its suffix, so a file without the right one gets it.
        files = {}
        for item in context.inputs:
            path = item.path
            if item.kind in SUFFIX and path.suffix != SUFFIX[item.kind]:
                path = path.rename(path.with_name(path.name + SUFFIX[item.kind]))
            files[item.id] = str(path)
        document = context.params["input"]
        named = dict.fromkeys(files[ref.upload] for ref in references(document))
        # The MSAs its search found, by chain.
        searched = {
            msa.chain_of(name): str(path)
            for name, path in context.extras.items()
            if msa.chain_of(name)
        }
        return {
            "document": with_msas(with_files(document, files), searched),
            # The archive's copy names each file beside it.
            "archived": with_msas(
                with_files(document, {pk: Path(path).name for pk, path in files.items()}),
                {chain: Path(path).name for chain, path in searched.items()},
            ),
            "attached": [*named, *searched.values()],
            "record": record_name(context.params, context.job_id),
            "work": str(context.scratch / "boltz"),
            "out": str(context.out),
            "params": context.params,
        }
