"""The `portal` command: the client's calls from a shell.

    portal projects                        your projects: id, your role, name
    portal jobs [--project P] [--state S] [--kind K]
                                           jobs, newest first, with their headline figures
    portal upload PROJECT FILE             PROJECT: a project's id or its name
    portal predict INPUT... [boltz's options]
                                           boltz predict on the pool: boltz's inputs, options
                                           and output layout (see `portal predict --help`)
    portal submit FILE.json|FILE.yaml      one job, or {"jobs": [...]} for a batch
    portal follow JOB                      log lines and progress until the job ends
    portal wait JOB                        its end and figures; exit 0 if it succeeded, else 1
    portal download JOB [NAME] [-o DEST]   one artifact, or all as the ZIP

`--url` and `--token` (before the command) override PORTAL_URL, PORTAL_TOKEN and
~/.config/portal/config.toml.
"""

import argparse
import json
import sys
from pathlib import Path

from portal_client.client import Portal
from portal_client.errors import PortalError
from portal_client.predict import add_parser as add_predict
from portal_client.predict import predict as predict_inputs


def _read_spec(path: Path):
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise PortalError(
                "yaml_unavailable", "Reading YAML needs PyYAML (pip install pyyaml); JSON works."
            ) from None
        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PortalError("spec_invalid", f"{path}: {exc}") from None


# The figures a job's end is read by, as the portal's metrics name them.
FIGURES = [
    ("confidence_score", "confidence"),
    ("ptm", "pTM"),
    ("iptm", "ipTM"),
    ("complex_plddt", "pLDDT"),
    ("affinity_pred_value", "affinity (log10 IC50, µM)"),
    ("affinity_probability_binary", "binder probability"),
    ("val_accuracy", "accuracy"),
    ("val_rmse", "RMSE"),
]


def figures(job: dict) -> str:
    """A job's headline figures, as a line: `confidence 0.812, pTM 0.790, …`."""
    metrics = job.get("metrics") or {}
    return ", ".join(
        f"{label} {metrics[name]['value']:.3f}"
        for name, label in FIGURES
        if isinstance(metrics.get(name), dict)
        and isinstance(metrics[name].get("value"), int | float)
    )


def projects(portal: Portal, args) -> int:
    for project in portal.projects():
        print(f"{project['id']}\t{project.get('my_role') or ''}\t{project['name']}")
    return 0


def jobs(portal: Portal, args) -> int:
    project = portal.project_id(args.project) if args.project is not None else None
    for job in portal.jobs(project=project, state=args.state, kind=args.kind):
        print("\t".join([str(job["id"]), job["kind"], job["state"], job["name"], figures(job)]))
    return 0


def upload(portal: Portal, args) -> int:
    project = portal.project_id(args.project)
    print(json.dumps(portal.upload(project, args.file, progress=not args.quiet)))
    return 0


def submit(portal: Portal, args) -> int:
    spec = _read_spec(args.file)
    if isinstance(spec, dict) and isinstance(spec.get("jobs"), list):
        spec = spec["jobs"]
    elif not isinstance(spec, dict | list):
        raise PortalError("spec_invalid", f"{args.file}: a job, a list of jobs or {{jobs: [...]}}.")
    print(json.dumps(portal.submit(spec, idempotency_key=args.idempotency_key), indent=2))
    return 0


def predict(portal: Portal, args) -> int:
    return predict_inputs(portal, args, figures)


def describe(event: dict) -> str | None:
    """An event as a line for a person, or None for one not worth a line."""
    kind = event["type"]
    if kind == "log":
        return event.get("line", "")
    if kind == "progress":
        return f"[{event.get('percent', 0):5.1f}%] {event.get('message') or ''}".rstrip()
    if kind == "state":
        reason = f" ({event['reason']})" if event.get("reason") else ""
        return f"== {event['state']}{reason}"
    return None


def follow(portal: Portal, args) -> int:
    for event in portal.follow(args.job, after=args.after):
        if (line := describe(event)) is not None:
            print(line, flush=True)
    return 0


def wait(portal: Portal, args) -> int:
    job = portal.wait(args.job)
    said = figures(job)
    print(
        job["state"]
        + (f": {job['error']}" if job.get("error") else "")
        + (f" ({said})" if said else "")
    )
    return 0 if job["state"] == "succeeded" else 1


def download(portal: Portal, args) -> int:
    print(portal.download(args.job, args.output, name=args.name, progress=not args.quiet))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="portal", description="The science portal from a shell.", epilog=__doc__
    )
    top.formatter_class = argparse.RawDescriptionHelpFormatter
    top.add_argument("--url", help="the portal's address (else PORTAL_URL, else the config file)")
    top.add_argument("--token", help="an API token (else PORTAL_TOKEN, else the config file)")
    top.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = top.add_subparsers(dest="command", required=True)

    c = commands.add_parser("projects", help="list your projects")
    c.set_defaults(run=projects)

    c = commands.add_parser("jobs", help="list jobs, newest first, with their figures")
    c.add_argument("--project", help="a project's id or name")
    c.add_argument("--state", help="queued, running, succeeded, …")
    c.add_argument("--kind", help="predict, design, …")
    c.set_defaults(run=jobs)

    c = commands.add_parser("upload", help="upload a file, unless the project has it already")
    c.add_argument("project", help="a project's id or name")
    c.add_argument("file", type=Path)
    c.set_defaults(run=upload)

    add_predict(commands)
    commands.choices["predict"].set_defaults(run=predict)

    c = commands.add_parser("submit", help="submit a job, or a batch, from a JSON or YAML file")
    c.add_argument("file", type=Path)
    c.add_argument("--idempotency-key", help="send this key (default: a new one)")
    c.set_defaults(run=submit)

    c = commands.add_parser("follow", help="print a job's log and progress until it ends")
    c.add_argument("job", type=int)
    c.add_argument("--after", type=int, default=0, help="start after this event id")
    c.set_defaults(run=follow)

    c = commands.add_parser("wait", help="wait for a job to end; exit 1 unless it succeeded")
    c.add_argument("job", type=int)
    c.set_defaults(run=wait)

    c = commands.add_parser("download", help="download an artifact, or all as a ZIP")
    c.add_argument("job", type=int)
    c.add_argument("name", nargs="?", help="one artifact (default: the ZIP of all)")
    c.add_argument("-o", "--output", default=".", help="file, or directory (one ending in /)")
    c.set_defaults(run=download)
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(Portal(args.url, args.token), args)
    except PortalError as exc:
        print(f"portal: {exc.code}: {exc.detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `portal jobs | head`: the reader has what it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
