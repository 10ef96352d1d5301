"""`portal predict`: `boltz predict`'s command line, run on the portal's pool.

It takes what `boltz predict` takes (a Boltz YAML, a Boltz FASTA or a directory of them) with
boltz's own options and defaults, and leaves boltz's layout under `--out_dir`:
`boltz_results_<input>/predictions/<name>/<name>_model_<k>.cif`, its confidence JSON, its
pLDDT/PAE/PDE arrays and `affinity_<name>.json`, each file what `boltz predict` writes for that
input with that seed, plus the portal's `provenance.json`.

The way there:
1. Every input is read and every file it names (a protein's `msa:`, a template's `cif:` or
   `pdb:`, the MSA field of a FASTA header), relative to the working directory as boltz opens
   them, is checked before anything is sent: a missing file, or one boltz would not read as
   what it is named for, stops the command naming it.
2. Those files are uploaded to the project (not sent where the project has the bytes), and each
   input is uploaded with its paths replaced by the uploads' ids; the user's files stay as
   they are.
3. One prediction per input goes in one batch whose Idempotency-Key is a digest of the inputs
   and options: the same command run again, after a crash or a cut connection, gets the jobs
   it made the first time and creates none.
4. It follows the jobs (a progress bar each, and a total), downloads each one's files as it
   ends (each checked against its SHA-256), writes them into the record's folder at once (a
   folder there is whole), and says each job's figures.

Each input is predicted alone, as `boltz predict <that file>` predicts it: boltz's run over a
directory seeds once and draws every record's noise from one stream, so there a record's
structure also depends on the records read before it; here it does not.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from tqdm import tqdm

from portal_client.client import FINAL_STATES, Portal
from portal_client.errors import PortalError

# What boltz reads as an input, by suffix (boltz.main.check_inputs), and what each is uploaded as.
INPUT_SUFFIXES = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".fa": "fasta",
    ".fas": "fasta",
    ".fasta": "fasta",
}
# What boltz reads a named file as: an MSA by its suffix; a template as mmCIF or PDB.
MSA_SUFFIXES = (".a3m", ".csv")
TEMPLATE_SUFFIXES = {"cif": (".cif", ".mmcif"), "pdb": (".pdb", ".ent")}
# A record's name as the portal takes it (predictions/kinds.py: RECORD).
RECORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}$")

# boltz predict's options the pool honours, with boltz's defaults: name -> (type, default).
OPTIONS = {
    "recycling_steps": (int, 3),
    "sampling_steps": (int, 200),
    "diffusion_samples": (int, 1),
    "step_scale": (float, 1.5),
    "output_format": (str, "mmcif"),
    "sampling_steps_affinity": (int, 200),
    "diffusion_samples_affinity": (int, 5),
}
# boltz predict's options that change nothing boltz writes: taken, and said to be the node's.
NODE_DECIDES = {
    "--num_workers": "the node's data loading",
    "--preprocessing-threads": "the node's preparation",
    "--devices": "one GPU per prediction, the pool's",
    "--accelerator": "the pool's (a GPU where the prediction fits)",
}
# boltz predict's options the pool cannot honour, with why.
REFUSED = {
    "--cache": "the node's weights and molecules are the operator's (PORTAL_BOLTZ_CACHE)",
    "--checkpoint": "the node's weights are the operator's (PORTAL_BOLTZ_CHECKPOINT)",
    "--affinity_checkpoint": "the node's weights are the operator's "
    "(PORTAL_BOLTZ_AFFINITY_CHECKPOINT)",
    "--max_parallel_samples": "the node batches samples as boltz does by default (5)",
    "--msa_server_url": "the pool's MSA server is the operator's (PORTAL_MSA_SERVER_URL)",
    "--msa_pairing_strategy": "the pool's MSA server pairs greedily, boltz's default",
    "--msa_server_username": "the pool's MSA server is the operator's",
    "--msa_server_password": "the pool's MSA server is the operator's",
    "--api_key_header": "the pool's MSA server is the operator's",
    "--api_key_value": "the pool's MSA server is the operator's",
    "--method": "the portal predicts without a method condition",
    "--max_msa_seqs": "the pool reads boltz's default 8,192 rows of an MSA",
    "--subsample_msa": "the pool does not subsample MSAs (boltz's default)",
    "--num_subsampled_msa": "the pool does not subsample MSAs (boltz's default)",
    "--no_kernels": "the node decides whether boltz's kernels run (on GPUs that have them)",
    "--write_embeddings": "the pool does not keep the model's embeddings",
}


@dataclass
class Input:
    """One input file as `boltz predict` reads it."""

    path: Path
    results: str  # boltz_results_<the argument's name>
    kind: str  # yaml | fasta
    text: str
    named: dict[str, Path] = field(default_factory=dict)  # a path as written -> the file

    @property
    def record(self) -> str:
        return self.path.stem


def refuse(message: str):
    raise PortalError("predict_refused", message)


def gather(arguments: list[Path]) -> list[Input]:
    """The input files of the arguments (a file, or a directory of them, as boltz's
    check_inputs takes it), each read and the files it names found."""
    inputs: list[Input] = []
    for argument in arguments:
        if not argument.exists():
            refuse(f"{argument}: no such file or directory.")
        files = sorted(argument.iterdir()) if argument.is_dir() else [argument]
        for path in files:
            if path.is_dir():
                refuse(f"Found directory {path} instead of .fasta or .yaml (as boltz says).")
            if path.suffix.lower() not in INPUT_SUFFIXES:
                refuse(f"{path}: boltz reads .fasta, .fa, .fas, .yaml or .yml files, not this one.")
            if not RECORD.match(path.stem):
                refuse(
                    f"{path}: boltz names the prediction '{path.stem}' after the file; the portal "
                    "takes names of letters, digits and _.+- (up to 100); rename the file."
                )
            kind = INPUT_SUFFIXES[path.suffix.lower()]
            inputs.append(Input(path, f"boltz_results_{argument.stem}", kind, path.read_text()))
    seen: dict[tuple[str, str], Path] = {}
    for item in inputs:
        other = seen.setdefault((item.results, item.record), item.path)
        if other != item.path:
            refuse(f"{other} and {item.path} would both be predicted as '{item.record}'.")
    return inputs


def named_files(item: Input, use_msa_server: bool) -> None:
    """Find, and check, every file `item` names; a protein without an MSA is refused as boltz
    refuses it, unless the pool's MSA server is asked for."""

    def take(written, what: str, suffixes) -> None:
        if not isinstance(written, str) or not written:
            refuse(f"{item.path}: {what} is not a path.")
        path = Path(written)  # from the working directory, as boltz opens it (no ~)
        if path.suffix.lower() not in suffixes:
            refuse(
                f"{item.path}: {what} '{written}': boltz reads {' or '.join(suffixes)} files "
                "there; nothing was uploaded."
            )
        if not path.is_file():
            refuse(
                f"{item.path}: {what} '{written}' is not a file (boltz opens it from "
                f"{Path.cwd()}); nothing was uploaded."
            )
        item.named[written] = path

    def no_msa(chain) -> None:
        if not use_msa_server:
            refuse(
                f"{item.path}: protein {chain} has no MSA (boltz: \"Missing MSA's in input and "
                '--use_msa_server flag not set"); give it one, `msa: empty` for none, or '
                "--use_msa_server for the pool's MSA server."
            )

    if item.kind == "fasta":
        for header in (line[1:].strip() for line in item.text.splitlines() if line.startswith(">")):
            fields = header.split("|")
            if len(fields) < 2:
                refuse(
                    f"{item.path}: boltz's FASTA headers are >CHAIN|TYPE[|MSA]; not '>{header}'."
                )
            if fields[1].lower() != "protein":
                continue
            msa = fields[2] if len(fields) > 2 else ""
            if msa == "empty":
                continue
            if not msa:
                no_msa(fields[0])
            else:
                take(msa, f"the MSA of protein {fields[0]}", MSA_SUFFIXES)
        return
    try:
        document = yaml.safe_load(item.text)
    except yaml.YAMLError as exc:
        refuse(f"{item.path}: not YAML: {exc}")
    if not isinstance(document, dict):
        refuse(f"{item.path}: a Boltz YAML is a mapping with `sequences`.")
    for entry in document.get("sequences") or []:
        body = entry.get("protein") if isinstance(entry, dict) else None
        if not isinstance(body, dict):
            continue
        msa = body.get("msa")
        if msa in (None, ""):
            no_msa(body.get("id"))
        elif msa != "empty":
            take(msa, f"the MSA of protein {body.get('id')}", MSA_SUFFIXES)
    for number, template in enumerate(document.get("templates") or [], start=1):
        for what, suffixes in TEMPLATE_SUFFIXES.items():
            if isinstance(template, dict) and what in template:
                take(template[what], f"template {number}'s `{what}`", suffixes)


def with_ids(item: Input, ids: dict[str, int]) -> bytes:
    """The input with each path it names replaced by its upload's id."""
    if item.kind == "fasta":
        lines = []
        for line in item.text.splitlines(keepends=True):
            fields = line[1:].rstrip("\r\n").split("|") if line.startswith(">") else []
            if len(fields) > 2 and fields[2] in ids:
                fields[2] = str(ids[fields[2]])
                line = ">" + "|".join(fields) + "\n"
            lines.append(line)
        return "".join(lines).encode()
    document = yaml.safe_load(item.text)
    for entry in document.get("sequences") or []:
        body = entry.get("protein") if isinstance(entry, dict) else None
        if isinstance(body, dict) and body.get("msa") in ids:
            body["msa"] = ids[body["msa"]]
    for template in document.get("templates") or []:
        for what in TEMPLATE_SUFFIXES:
            if isinstance(template, dict) and template.get(what) in ids:
                template[what] = ids[template[what]]
    return yaml.safe_dump(document, sort_keys=False).encode()


def upload_bytes(portal: Portal, project: int, name: str, data: bytes) -> int:
    """Upload bytes as a file of that name (unless the project has them); the upload's id."""
    with tempfile.TemporaryDirectory(prefix="portal-predict-") as scratch:
        path = Path(scratch) / name
        path.write_bytes(data)
        return portal.upload(project, path, progress=False)["id"]


def outputs(record: str, names) -> list[str]:
    """The artifacts of a prediction named `record` that `boltz predict` writes into its
    predictions folder, and the portal's provenance."""
    pattern = re.compile(
        rf"^(({re.escape(record)}_model_\d+\.(cif|pdb))"
        rf"|((confidence_{re.escape(record)}_model_\d+\.json))"
        rf"|((plddt|pae|pde)_{re.escape(record)}_model_\d+\.npz)"
        rf"|((pre_)?affinity_{re.escape(record)}\.(json|npz))|provenance\.json)$"
    )
    return sorted(name for name in names if pattern.match(name))


def batch_key(project: int, specs: list[dict]) -> str:
    """The batch's Idempotency-Key: the same inputs (their bytes, through the uploads' ids),
    project and options give the same key."""
    text = json.dumps([project, specs], sort_keys=True)
    return "portal-predict-" + hashlib.sha256(text.encode()).hexdigest()


class Follower(threading.Thread):
    """Follows one job to its end with a progress bar, then lays out its files."""

    def __init__(self, portal, job, item, out: Path, position: int, quiet: bool, total):
        super().__init__(daemon=True)
        # A client of its own: one HTTP session is not for several threads at once.
        portal = Portal(portal.url, portal.token, timeout=portal.timeout)
        self.portal, self.job, self.item, self.out = portal, job, item, out
        self.total = total
        self.bar = tqdm(
            total=100,
            position=position,
            bar_format="{desc} {percentage:3.0f}%|{bar}|",
            disable=quiet,
            leave=True,
        )
        self.say(job["state"])
        self.ended: dict | None = None
        self.failure: Exception | None = None

    def run(self):
        try:
            if self.job["state"] not in FINAL_STATES:
                for event in self.portal.follow(self.job["id"]):
                    if event["type"] == "progress":
                        self.bar.n = min(100.0, float(event.get("percent") or 0))
                        self.say(event.get("message") or "")
                    elif event["type"] == "state":
                        self.say(event["state"])
            self.ended = self.portal.job(self.job["id"])
            if self.ended["state"] == "succeeded":
                self.say("downloading")
                self.lay_out()
                self.bar.n = 100
            self.say(self.ended["state"])
        except Exception as exc:  # said at the end, with the job's number
            self.failure = exc
        finally:
            self.bar.close()
            self.total.update(1)

    def say(self, message: str) -> None:
        """The bar's words: the record, and what its job is doing."""
        self.bar.set_description_str(f"{self.item.record[:20]:<20} {message[:40]:<40}")

    def lay_out(self):
        """The job's files into `<out>/<results>/predictions/<record>/`, whole: downloaded
        beside it, then moved there."""
        record = self.item.record
        names = outputs(record, [a["name"] for a in self.portal.artifacts(self.job["id"])])
        folder = self.out / self.item.results / "predictions" / record
        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{record}.", dir=folder.parent))
        try:
            for name in names:
                self.portal.download(self.job["id"], partial / name, name=name, progress=False)
            if folder.exists():  # --override: boltz writes over what was there
                shutil.rmtree(folder)
            os.replace(partial, folder)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise


def predict(portal: Portal, args, figures) -> int:
    for flag in args.node_decides:
        print(
            f"portal: {flag}: {NODE_DECIDES[flag]}; it changes nothing boltz writes.",
            file=sys.stderr,
        )
    inputs = gather(args.data)
    for item in inputs:
        named_files(item, args.use_msa_server)
    out = Path(args.out_dir)
    done = [i for i in inputs if (out / i.results / "predictions" / i.record).is_dir()]
    if done and not args.override:
        print(
            f"Found {len(done)} existing predictions, skipping them (--override predicts them "
            "again): " + ", ".join(i.record for i in done)
        )
        inputs = [i for i in inputs if i not in done]
    if not inputs:
        print("Nothing to predict.")
        return 0
    project = resolve_project(portal, args.project, args.create_project)

    # Uploads: every named file once, then each input with ids for paths.
    ids: dict[Path, int] = {}
    for item in inputs:
        for path in item.named.values():
            if path.resolve() not in ids:
                ids[path.resolve()] = portal.upload(project, path, progress=not args.quiet)["id"]
    params = {name: getattr(args, name) for name in OPTIONS}
    params["use_potentials"] = args.use_potentials
    params["affinity_mw_correction"] = args.affinity_mw_correction
    if args.seed is not None:
        params["seed"] = args.seed
    if args.use_msa_server:
        params["msa"] = "server"
    specs = []
    for item in inputs:
        rewritten = with_ids(item, {w: ids[p.resolve()] for w, p in item.named.items()})
        upload = upload_bytes(portal, project, item.path.name, rewritten)
        specs.append(
            {
                "project": project,
                "kind": "predict",
                "name": item.record,
                "inputs": [upload],
                "params": {**params, "record": item.record},
            }
        )
    jobs = portal.submit(specs, idempotency_key=batch_key(project, specs))
    print(
        f"{len(jobs)} prediction{'s' if len(jobs) != 1 else ''} in project {project}: "
        + ", ".join(f"#{job['id']} {item.record}" for job, item in zip(jobs, inputs, strict=True))
    )
    return follow_all(portal, jobs, inputs, out, args.quiet, figures)


def follow_all(portal, jobs, inputs, out: Path, quiet: bool, figures) -> int:
    total = tqdm(total=len(jobs), desc="all", position=0, unit="job", disable=quiet, leave=True)
    followers = [
        Follower(portal, job, item, out, position + 1, quiet, total)
        for position, (job, item) in enumerate(zip(jobs, inputs, strict=True))
    ]
    for follower in followers:
        follower.start()
    try:
        while any(f.is_alive() for f in followers):
            time.sleep(0.2)
    except KeyboardInterrupt:
        total.close()
        return interrupted(portal, [f for f in followers if f.ended is None])
    total.close()
    failed = 0
    for follower in followers:
        record, job = follower.item.record, follower.job["id"]
        if follower.failure is not None:
            failed += 1
            print(f"{record} (job {job}): {follower.failure}")
            continue
        ended = follower.ended
        said = figures(ended)
        where = out / follower.item.results / "predictions" / record
        if ended["state"] == "succeeded":
            seed = (ended.get("params") or {}).get("seed")
            print(
                f"{record} (job {job}, seed {seed}): succeeded{f' ({said})' if said else ''} "
                f"-> {where}"
            )
        else:
            failed += 1
            print(
                f"{record} (job {job}): {ended['state']}: {ended.get('error') or ''}".rstrip(": ")
            )
    return 1 if failed else 0


def interrupted(portal: Portal, unfinished: list) -> int:
    """Ctrl-C: cancel the unfinished jobs, or leave them running (the same command picks them
    up again)."""
    if not unfinished:
        return 130
    numbers = ", ".join(str(f.job["id"]) for f in unfinished)
    answer = ""
    if sys.stdin.isatty():
        try:
            answer = input(f"\nCancel the {len(unfinished)} unfinished jobs ({numbers})? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            answer = ""
    if answer.strip().lower() in ("y", "yes"):
        for follower in unfinished:
            portal.request("POST", f"/api/v1/jobs/{follower.job['id']}/cancel/", retries=3)
        print(f"Cancelled jobs {numbers}.")
    else:
        print(
            f"\nJobs {numbers} go on running; the same command follows them and fetches "
            "their files."
        )
    return 130


def resolve_project(portal: Portal, project, create: bool) -> int:
    if project is None:
        mine = portal.projects()
        if len(mine) == 1:
            return mine[0]["id"]
        refuse("Say which project: --project NAME or ID (`portal projects` lists yours).")
    try:
        return portal.project_id(project)
    except PortalError as exc:
        if not create or exc.code != "project_unknown":
            raise
    created = portal.request(
        "POST",
        "/api/v1/projects/",
        json={"name": project},
        retries=3,
        headers={
            "Idempotency-Key": "portal-create-project-"
            + hashlib.sha256(project.encode()).hexdigest()
        },
    ).json()
    print(f"Created project {created['name']} ({created['id']}).")
    return created["id"]


def add_parser(commands) -> None:
    """`portal predict`'s arguments: boltz predict's, with its defaults."""
    c = commands.add_parser(
        "predict",
        help="boltz predict on the portal's pool: the same inputs, options and output layout",
        description=__doc__.split("\n\n")[0],
        epilog=(
            f"Taken, and changing nothing boltz writes: {', '.join(NODE_DECIDES)}. "
            f"Refused, each saying why: {', '.join(REFUSED)}."
        ),
    )
    c.add_argument(
        "data", nargs="+", type=Path, help="a Boltz YAML or FASTA, or a directory of them"
    )
    c.add_argument("--out_dir", default="./", help="where boltz_results_<input>/ goes (./)")
    for name, (kind, default) in OPTIONS.items():
        if name == "output_format":
            c.add_argument("--output_format", choices=["mmcif", "pdb"], default=default)
        else:
            c.add_argument(f"--{name}", type=kind, default=default, help=f"boltz's ({default})")
    c.add_argument(
        "--seed", type=int, default=None, help="boltz's (none: the portal picks one and keeps it)"
    )
    c.add_argument("--use_msa_server", action="store_true", help="MSAs from the pool's MSA server")
    c.add_argument("--use_potentials", action="store_true")
    c.add_argument("--override", action="store_true", help="predict records whose folder exists")
    for flag in ("--write_full_pae", "--write_full_pde"):
        c.add_argument(flag, action="store_true", help="Boltz-2 writes it anyway, as boltz")
    c.add_argument(
        "--affinity_mw_correction", action="store_true", help="boltz's weight correction"
    )
    c.add_argument(
        "--model", choices=["boltz2"], default="boltz2", help="Boltz-2 (boltz1 is not on the pool)"
    )
    c.add_argument("--project", help="a project's id or name (default: your only project)")
    c.add_argument("--create-project", action="store_true", help="create --project if it is new")
    c.set_defaults(node_decides=[])
    for flag in NODE_DECIDES:
        c.add_argument(flag, action=_Noted, nargs="?", help=argparse.SUPPRESS)
    for flag in REFUSED:
        c.add_argument(flag, action=_Refused, nargs="?", help=argparse.SUPPRESS)


class _Noted(argparse.Action):
    """An option that changes nothing boltz writes: taken, and said."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.node_decides = [*namespace.node_decides, option_string]


class _Refused(argparse.Action):
    """A boltz option the pool cannot honour: the command stops, naming it."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string}: not on the portal's pool: {REFUSED[option_string]}.")
