"""Hostile input over the whole API: never a 500, never an answer off the schema, nothing stored.

A property-based fuzzer (schemathesis) runs every operation of the live schema against a running
portal, as the staff owner of a project with uploads, a finished job and a node, so that ids
resolve. Then the inputs that once gave 500s or were stored although wrong, by hand: ids beyond
64 bits in every path, query and body parameter the schema names; JSON nested 100,000 levels on
every JSON operation; bodies over the size limit; a YAML alias bomb, an SDF without atoms, two
file parts; absurd heartbeats; hostile WebSocket messages.
"""

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator

from jobs.lifecycle import events_append
from jobs.models import Job, State
from jobs.services import job_finish, job_start, job_submit
from nodes.services import node_create
from portal.accounts.services import token_create
from portal.projects.models import Membership
from tests.nodes.test_heartbeat import REPORT, beat
from tests.portal.test_formats import METHANE_SDF

pytestmark = pytest.mark.database

HUGE = 10**30
# JSON nested far beyond any limit: Python's own parser gives up at about 1,000 levels.
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
DEEP_LIST = "[" * 100_000 + "]" * 100_000
# Over the 2.5 MB a JSON body may hold.
TOO_BIG = json.dumps({"name": "n" * 3_000_000})


def run(coroutine):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# --- the lab the fuzzer works in ---------------------------------------------------------------

TRAINING_CSV = "sequence,label\n" + "".join(
    f"{'MKVLA'[i % 5] * 8}{'ACDEFGHIKL'[i % 10]},{i % 2}\n" for i in range(40)
)


def upload(api, user, project, name, data: bytes):
    response = api(user).post(
        "/api/v1/uploads/",
        {"project": project.pk, "file": SimpleUploadedFile(name, data)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def finished_job(project, user, node):
    """A check job that ran on `node`, logged, reported progress and left an artifact."""
    job, _ = job_submit(project=project, by=user, kind="check", params={}, inputs=[])
    Job.objects.filter(pk=job.pk).update(node=node, slot=0, placement=1)
    job_start(job_id=job.pk, placement=1, node_name=node.name, boot_id="b")
    events_append(
        job_id=job.pk,
        placement=1,
        events=[{"type": "log", "line": f"line {n}"} for n in range(5)]
        + [{"type": "progress", "percent": 50, "message": "half"}],
    )
    data = b'{"ok": true}'
    key = default_storage.save(f"artifacts/{job.pk}/1/check.json", ContentFile(data))
    artifact = {
        "name": "check.json",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "storage_key": key,
    }
    job_finish(
        job_id=job.pk, placement=1, state=State.SUCCEEDED, reason="done", artifacts=[artifact]
    )
    return job


def build_lab(project, alice, api) -> dict:
    """alice (staff) owns a project with uploads of several kinds, a finished job, a queued
    one, members and a node; returns the ids a fuzzer needs."""
    alice.is_staff = True
    alice.save()
    node, node_token = node_create(name="gpu01")
    beat(node_token)
    uploads = [
        upload(api, alice, project, "seqs.fasta", b">a\nMKVLA\n>b\nMKKLV\n"),
        upload(api, alice, project, "train.csv", TRAINING_CSV.encode()),
        upload(
            api, alice, project, "in.yaml", b"sequences:\n  - protein: {id: A, sequence: MKV}\n"
        ),
        upload(api, alice, project, "lig.sdf", METHANE_SDF),
    ]
    done = finished_job(project, alice, node)
    queued, _ = job_submit(project=project, by=alice, kind="sleep", params={"n": 1}, inputs=[])
    spare, _ = token_create(user=alice, name="spare")
    _, key = token_create(user=alice, name="fuzzer")
    return {
        "key": key,
        "node_token": node_token,
        "project": [project.pk],
        "upload": uploads,
        "job": [done.pk, queued.pk],
        "artifact": ["check.json"],
        "event": [1, 3, 6],
        "membership": list(
            Membership.objects.filter(project=project)
            .exclude(user=alice)
            .values_list("pk", flat=True)
        ),
        "token": [spare.pk],
        "node": [node.pk],
    }


@pytest.fixture
def lab(transactional_db, project, alice, api):
    """The lab in the database a portal server of its own reads."""
    return build_lab(project, alice, api)


@pytest.fixture
def lab_here(db, project, alice, api):
    """The lab for requests made in this process."""
    return build_lab(project, alice, api)


# --- the fuzzer ----------------------------------------------------------------------------------

# Which of the lab's ids each operation's path parameters take, by path.
PATH_IDS = {
    r"^/api/v1/jobs/\\{id\\}": "job",
    r"^/api/v1/uploads/\\{id\\}": "upload",
    r"^/api/v1/projects/\\{id\\}": "project",
    r"^/api/v1/memberships/\\{id\\}": "membership",
    r"^/api/v1/tokens/\\{id\\}": "token",
    r"^/api/v1/nodes/\\{id\\}": "node",
}
# Half the values a fuzzer sends for these come from the lab, so they reach the code behind
# the lookups; the other half are its own.
REAL = 0.5


def fuzz_config(lab) -> str:
    def binding(name):
        return f'{{ dictionary = "{name}", probability = {REAL} }}'

    lines = [f'headers = {{ Authorization = "Token {lab["key"]}" }}', "", "[dictionaries]"]
    for name in ("project", "upload", "job", "artifact", "event", "membership", "token", "node"):
        lines.append(f"{name} = {{ values = {json.dumps(lab[name])} }}")
    lines += [
        "",
        "[parameters]",
        f'"query.project" = {binding("project")}',
        f'"body.project" = {binding("project")}',
        f'"body.inputs[*]" = {binding("upload")}',
        f'"query.after" = {binding("event")}',
    ]
    for path, name in PATH_IDS.items():
        lines += [
            "",
            "[[operations]]",
            f'include-path-regex = "{path}"',
            f'parameters = {{ "path.id" = {binding(name)}, "path.name" = {binding("artifact")} }}',
        ]
    # The heartbeat speaks for a node, with the node's token.
    lines += [
        "",
        "[[operations]]",
        'include-path = "/api/v1/nodes/heartbeat/"',
        f'headers = {{ Authorization = "Node {lab["node_token"]}" }}',
    ]
    return "\n".join(lines) + "\n"


CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def examples() -> int:
    """Per operation and phase: all of them against PostgreSQL, what production runs; half
    against the embedded SQLite (CI's second run, for what differs there: integer ranges,
    text), where the rest would repeat what the first run tried."""
    from django.db import connection

    return 100 if connection.vendor == "postgresql" else 50


LAST = "^(DELETE |PATCH /api/v1/memberships/)"
# What leaves the lab standing is fuzzed in two halves side by side, each by a schemathesis of
# its own, against the one server: the fuzzer and the server each take about half the time of
# a run, so one after the other left a core idle.
SIDE_BY_SIDE = [
    ("--include-name-regex", "^[A-Z]+ /api/v1/jobs/", "--exclude-name-regex", LAST),
    ("--exclude-name-regex", "^([A-Z]+ /api/v1/jobs/|DELETE |PATCH /api/v1/memberships/)"),
]


def fuzz(server, config, *selections):
    """schemathesis over the live schema, a process for each selection of operations, side by
    side; returns their exit status (the first that is not 0) and their reports. Each runs in
    a folder of its own beside the config, where it keeps its cache, so no run replays
    another's."""
    runs = []
    for selection in selections:
        folder = Path(tempfile.mkdtemp(prefix="fuzz-", dir=config.parent))
        runs.append(_start_fuzzer(server, config, folder, selection))
    status, reports = 0, []
    for process in runs:
        out, _ = process.communicate(timeout=400)
        status = status or process.returncode
        reports.append(out)
    return status, "\n".join(reports)


def _start_fuzzer(server, config, folder, selection) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{server.url}/api/v1/schema/",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261129",
            "--max-examples",
            str(examples()),
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--suppress-health-check",
            "all",
            *selection,
        ],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_the_fuzzer_gets_no_server_error_and_no_answer_off_the_schema(lab, tmp_path):
    from tests.conftest import LiveServer

    server = LiveServer()
    try:
        config = tmp_path / "schemathesis.toml"
        config.write_text(fuzz_config(lab))
        # What takes the lab apart (deleting, changing roles) comes last, so the lab stands
        # while everything else is tried.
        status, report = fuzz(server, config, *SIDE_BY_SIDE)
        assert status == 0, report[-12000:]
        # The halves together tried every operation but the last ones.
        names = [f"{method.upper()} {path}" for method, path, _ in operations(api_schema())]
        tested = sum(int(n) for n in re.findall(r"Tested: (\d+)", report))
        assert tested == len([n for n in names if not re.match(LAST, n)]), report[-12000:]
        status, report = fuzz(server, config, ("--include-name-regex", LAST))
        assert status == 0, report[-12000:]
        assert "Traceback" not in server.output(), server.output()[-8000:]
    finally:
        server.stop()


# --- the inputs that once gave 500s, on every parameter the schema names -----------------------

# A valid body for every operation that takes JSON: each hostile case changes one thing in it.
# An operation added without one here fails `test_every_json_operation_has_a_valid_example`.
VALID_BODIES = {
    "POST /api/v1/jobs/": lambda lab: {
        "project": lab["project"][0],
        "kind": "sleep",
        "inputs": lab["upload"][:1],
        "params": {},
        "time_limit": 60,
    },
    "POST /api/v1/jobs/batch/": lambda lab: {
        "jobs": [{"project": lab["project"][0], "kind": "sleep", "params": {}, "time_limit": 60}]
    },
    "POST /api/v1/jobs/{id}/priority/": lambda lab: {"priority": "high"},
    "POST /api/v1/msa/cache/cleanup/": lambda lab: {"max_age_days": 30},
    "POST /api/v1/memberships/": lambda lab: {
        "project": lab["project"][0],
        "username": "charlie",
        "role": "viewer",
    },
    "PATCH /api/v1/memberships/{id}/": lambda lab: {"role": "editor"},
    "POST /api/v1/nodes/heartbeat/": lambda lab: json.loads(json.dumps(REPORT)),
    "POST /api/v1/projects/": lambda lab: {"name": "Another lab"},
    "PATCH /api/v1/projects/{id}/": lambda lab: {"name": "Renamed"},
    "POST /api/v1/tokens/": lambda lab: {"name": "script"},
}
PATH_VALUES = {
    "jobs": "job",
    "uploads": "upload",
    "projects": "project",
    "memberships": "membership",
    "tokens": "token",
    "nodes": "node",
}


def api_schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def integer_spots(schema, node, where=()):
    """Paths (keys and list indexes) to every integer a JSON body of this schema can hold."""
    node = resolve(schema, node)
    if node.get("type") == "integer":
        yield where
    elif node.get("type") == "array" and "items" in node:
        yield from integer_spots(schema, node["items"], (*where, 0))
    for name, child in node.get("properties", {}).items():
        if not child.get("readOnly"):
            yield from integer_spots(schema, child, (*where, name))


def put(document, where, value):
    """A copy of `document` with `value` at `where` (lists grow to reach their index)."""
    document = json.loads(json.dumps(document))
    target = document
    for key, next_key in zip(where, (*where[1:], None), strict=True):
        if next_key is None:
            break
        if isinstance(target, list):
            while len(target) <= key:
                target.append({} if isinstance(next_key, str) else [])
        elif key not in target or not isinstance(target[key], dict | list):
            target[key] = {} if isinstance(next_key, str) else []
        target = target[key]
    if isinstance(target, list):
        target[where[-1] : where[-1] + 1] = [value]
    else:
        target[where[-1]] = value
    return document


def json_body(operation):
    return operation.get("requestBody", {}).get("content", {}).get("application/json")


class Caller:
    """Requests as the lab's owner (or its node, for the heartbeat), in this process."""

    def __init__(self, lab):
        from rest_framework.test import APIClient

        self.lab = lab
        self.client = APIClient()

    def url(self, path, overrides=None):
        values = {}
        resource = path.split("/")[3]
        values["id"] = self.lab[PATH_VALUES.get(resource, "job")][0]
        values["name"] = "check.json"
        values["action"] = "drain"
        values.update(overrides or {})
        return path.format(**values)

    def __call__(self, method, path, body=None, query=None, raw=None, overrides=None):
        auth = f"Token {self.lab['key']}"
        if path.endswith("/heartbeat/"):
            auth = f"Node {self.lab['node_token']}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.client.generic(
            method,
            self.url(path, overrides) + ("?" + query if query else ""),
            data=data or "",
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        )


# Fields that change by being read (a token's last use) are not what "stored" means.
VOLATILE = {"last_used_at"}


def stored() -> dict:
    """Every row of every table the portal owns, to compare before and after a request."""
    rows = {}
    for model in apps.get_models():
        if model._meta.app_label in {"sessions", "admin", "contenttypes", "auth", "django_q"}:
            continue
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in VOLATILE]
        rows[model._meta.label] = sorted(map(repr, model.objects.values_list(*fields)))
    return rows


def refused(response, *statuses) -> str | None:
    """What is wrong with an answer to hostile input, or None if it is a clear refusal."""
    if response.status_code not in statuses:
        return f"{response.status_code} {response.content[:200]!r}"
    body = response.json()
    if not (isinstance(body.get("code"), str) and isinstance(body.get("detail"), str)):
        return f"{response.status_code} without code and detail: {body}"
    return None


def test_every_json_operation_has_a_valid_example():
    named = {f"{m} {p}" for m, p, op in operations(api_schema()) if json_body(op)}
    assert named == set(VALID_BODIES)


@pytest.mark.parametrize("huge", [2**63, HUGE], ids=["2**63", "10**30"])
def test_an_id_beyond_64_bits_is_refused_wherever_it_is_sent(lab_here, huge):
    schema, call, problems, tried = api_schema(), Caller(lab_here), [], 0
    for method, path, operation in operations(schema):
        name = f"{method} {path}"
        body = VALID_BODIES[name](lab_here) if json_body(operation) else None
        cases = []
        for parameter in operation.get("parameters", []):
            if resolve(schema, parameter["schema"]).get("type") != "integer":
                continue
            if parameter["in"] == "path":
                # A path no route matches is a 404.
                cases.append((f"path {parameter['name']}", {"overrides": {"id": huge}}, (404,)))
            elif parameter["in"] == "query":
                query = f"{parameter['name']}={huge}"
                # A page past the last is a 404 (DRF's pagination); an id is a 400.
                statuses = (404,) if parameter["name"] == "page" else (400,)
                cases.append((f"query {parameter['name']}", {"query": query}, statuses))
        if body is not None:
            for where in integer_spots(schema, json_body(operation)["schema"]):
                hostile = put(body, where, huge)
                spot = ".".join(map(str, where))
                cases.append((f"body {spot}", {"body": hostile}, (400,)))
        for label, request, statuses in cases:
            tried += 1
            request.setdefault("body", body)
            before = stored()
            problem = refused(call(method, path, **request), *statuses)
            if problem is None and stored() != before:
                problem = "stored something"
            if problem:
                problems.append(f"{name} {label}: {problem}")
    # Uploads are a form: the project field of the multipart body.
    before = stored()
    response = Caller(lab_here).client.post(
        "/api/v1/uploads/",
        {"project": str(huge), "file": SimpleUploadedFile("a.fasta", b">a\nMKV\n")},
        format="multipart",
        HTTP_AUTHORIZATION=f"Token {lab_here['key']}",
    )
    if problem := refused(response, 400) or (stored() != before and "stored something"):
        problems.append(f"POST /api/v1/uploads/ form project: {problem}")
    assert tried > 30 and not problems, "\n".join(problems)


def refused_by_every_json_operation(
    lab_here, raw, status: int, saying: str = "", code: str | None = None
) -> list[str]:
    """What is wrong with how each JSON operation answers the body `raw`: anything but a clear
    `status` (with `code`, and a detail that says `saying`, where given) that stored nothing."""
    schema, call, problems = api_schema(), Caller(lab_here), []
    for method, path, operation in operations(schema):
        if json_body(operation):
            before = stored()
            response = call(method, path, raw=raw)
            problem = refused(response, status)
            if problem is None and code and response.json()["code"] != code:
                problem = f"code {response.json()['code']}"
            if problem is None and saying not in response.json()["detail"]:
                problem = f"said {response.json()['detail']!r}"
            if problem is None and stored() != before:
                problem = "stored something"
            if problem:
                problems.append(f"{method} {path}: {problem}")
    return problems


@pytest.mark.parametrize("document", [DEEP_OBJECT, DEEP_LIST], ids=["objects", "lists"])
def test_json_nested_100000_levels_deep_is_a_400_on_every_json_operation(lab_here, document):
    problems = refused_by_every_json_operation(lab_here, document, 400)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "document",
    [
        '{"hostname": "a\\u0000b", "params": {"x": "a\\u0000b"}}',
        '{"\\ud800": 1, "name": "\\udfff"}',
    ],
    ids=["nul", "lone-surrogate"],
)
def test_json_text_that_cannot_be_stored_is_a_400_on_every_json_operation(lab_here, document):
    """Valid JSON, but PostgreSQL stores no NUL character and UTF-8 no lone surrogate: found by
    the fuzzer as a heartbeat's engines, a server error until the parser refused it."""
    problems = refused_by_every_json_operation(
        lab_here, document, 400, "which no text is stored with"
    )
    assert not problems, "\n".join(problems)


def test_json_nested_past_the_limit_is_refused_and_just_within_it_is_read(lab_here):
    from portal.parsers import MAX_DEPTH

    call = Caller(lab_here)
    within = {"project": lab_here["project"][0], "kind": "sleep", "params": {}}
    deep = within["params"]
    for _ in range(MAX_DEPTH - 2):
        deep["a"] = {}
        deep = deep["a"]
    # Read, then refused for what it says: no kind takes a parameter "a".
    response = call("POST", "/api/v1/jobs/", within)
    assert response.status_code == 400 and response.json()["code"] == "params_invalid"
    deep["a"] = {}
    response = call("POST", "/api/v1/jobs/", within)
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    assert "nested too deeply" in response.json()["detail"]


def test_a_body_over_the_size_limit_is_a_413_on_every_json_operation(lab_here):
    problems = refused_by_every_json_operation(lab_here, TOO_BIG, 413, code="request_too_large")
    assert not problems, "\n".join(problems)


# --- stored although wrong -------------------------------------------------------------------

# Nine "lol"s, then eight levels of nine aliases each to the level before: 9**9 values.
BILLION_LAUGHS = (
    b'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + b"".join(
        f"{level}: &{level} [{', '.join([f'*{below}'] * 9)}]\n".encode()
        for below, level in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def upload_files(lab, *files, project=None):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {lab['key']}")
    return client.post(
        "/api/v1/uploads/",
        {"project": project or lab["project"][0], "file": list(files)},
        format="multipart",
    )


def nothing_new_stored(before) -> bool:
    from django.conf import settings

    leftovers = list((settings.WORKDIR / "tmp").iterdir())
    return stored() == before and not leftovers


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("bomb.yaml", BILLION_LAUGHS, "aliases (*name) would repeat more than 10,000 values"),
        ("self.yaml", b"a: &a [1, *a]\n", "the alias *a repeats a part that contains it"),
        ("deep.yaml", b"[" * 100_000 + b"]" * 100_000, "nests deeper than 32 levels"),
        (
            "empty.sdf",
            b"x\n  RDKit\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n",
            "has no atoms",
        ),
        ("empty.mol2", b"@<TRIPOS>MOLECULE\nx\n 0 0\nSMALL\n@<TRIPOS>ATOM\n", "has no atoms"),
    ],
)
def test_an_upload_that_is_not_what_it_claims_is_refused_and_not_stored(
    lab_here, name, data, message
):
    before = stored()
    response = upload_files(lab_here, SimpleUploadedFile(name, data))
    assert response.status_code == 400 and response.json()["code"] == "upload_invalid"
    assert message in response.json()["detail"]
    assert nothing_new_stored(before)


def test_two_file_parts_are_refused_and_neither_is_stored(lab_here):
    before = stored()
    response = upload_files(
        lab_here,
        SimpleUploadedFile("first.fasta", b">a\nMKV\n"),
        SimpleUploadedFile("second.fasta", b">b\nMKL\n"),
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "The form sends 'file' twice; send it once."
    assert nothing_new_stored(before)


def test_form_fields_beyond_their_limit_are_a_413(lab_here):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {lab_here['key']}")
    before = stored()
    response = client.post(
        "/api/v1/uploads/",
        {"project": "1" * 100_000, "file": SimpleUploadedFile("a.fasta", b">a\nMKV\n")},
        format="multipart",
    )
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert nothing_new_stored(before)


# --- the heartbeat, which the schema cannot fully describe -----------------------------------


def gpu(index=0, **extra):
    return {**REPORT["gpus"][0], "index": index, **extra}


@pytest.mark.parametrize(
    "change, field",
    [
        (
            {"gpus": [gpu(i % 64) for i in range(10_000)]},
            "gpus: Ensure this field has no more than 64",
        ),
        ({"gpus": [gpu(memory_total=HUGE)]}, "gpus.memory_total: Ensure this value is less than"),
        ({"gpus": [gpu(memory_used=2**40)]}, "gpus.memory_used: More than the GPU's total"),
        ({"gpus": [gpu(utilization=101)]}, "gpus.utilization: Ensure this value is less than"),
        ({"gpus": [gpu(temperature=5000)]}, "gpus.temperature: Ensure this value is less than"),
        ({"gpus": [gpu(name="x" * 300)]}, "gpus.name: Ensure this field has no more than 200"),
        ({"gpus": [gpu(0), gpu(0)]}, "gpus: Two GPUs report the same index"),
        ({"memory_total": HUGE}, "memory_total: Ensure this value is less than"),
        ({"memory_used": REPORT["memory_total"] + 1}, "memory_used: More than the host's total"),
        ({"cpu_percent": 250}, "cpu_percent: Ensure this value is less than"),
        ({"hostname": "h" * 300}, "hostname: Ensure this field has no more than 255"),
        ({"engines": {f"e{i}": {} for i in range(50)}}, "engines: At most 20 engines"),
        ({"engines": {"boltz": {"notes": "x" * 5000}}}, "engines: Too much engine detail"),
    ],
)
def test_an_absurd_heartbeat_is_a_400_naming_the_field_and_changes_nothing(lab_here, change, field):
    before = stored()
    response = beat(lab_here["node_token"], {**REPORT, **change})
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"]
    assert stored() == before


def test_a_heartbeat_too_large_or_too_deep_is_refused(lab_here):
    call, before = Caller(lab_here), stored()
    response = call("POST", "/api/v1/nodes/heartbeat/", {**REPORT, "hostname": "h" * 20_000_000})
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    response = call("POST", "/api/v1/nodes/heartbeat/", raw=DEEP_OBJECT)
    assert response.status_code == 400 and response.json()["code"] == "parse_error"
    assert stored() == before


# --- WebSocket messages a client may send ----------------------------------------------------


def test_hostile_websocket_messages_neither_break_a_stream_nor_the_server(
    lab, project, alice, portal_server
):
    from jobs.models import Job

    node = node_create(name="gpu02")[0]
    job, _ = job_submit(project=project, by=alice, kind="sleep", params={"n": 2}, inputs=[])
    Job.objects.filter(pk=job.pk).update(node=node, slot=0, placement=1)
    job_start(job_id=job.pk, placement=1, node_name=node.name, boot_id="b")
    base = portal_server.url.replace("http://", "ws://")
    headers = {"Authorization": f"Token {lab['key']}"}

    async def close_code(path):
        async with websockets.connect(base + path, additional_headers=headers) as socket:
            try:
                await asyncio.wait_for(socket.recv(), 10)
                await asyncio.wait_for(socket.recv(), 10)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code
        return "open"

    async def hostile_then_follow():
        url = f"{base}/ws/jobs/{job.pk}/?after=0"
        async with websockets.connect(url, additional_headers=headers) as socket:
            backlog = [json.loads(await socket.recv()) for _ in range(2)]  # queued, running
            for frame in [DEEP_OBJECT, DEEP_LIST, "{not json", b"\x00\xff binary", "[]" * 1000]:
                await socket.send(frame)
            # Daphne notices a consumer that failed within a second, and closes with 1011.
            await asyncio.sleep(1.5)
            # On a thread that hands its database connection back when done (a plain thread's
            # would stay open and keep the test database from being dropped at the end).
            await database_sync_to_async(events_append)(
                job_id=job.pk,
                placement=1,
                events=[{"type": "log", "line": "still here"}],
            )
            event = json.loads(await asyncio.wait_for(socket.recv(), 10))
            # Over Daphne's 1 MiB for one message: the server drops the connection (it may
            # do so while the message is still being sent).
            try:
                await socket.send("x" * (2 << 20))
                await asyncio.wait_for(socket.recv(), 10)
            except websockets.ConnectionClosed:
                return backlog, event, "dropped"

    backlog, event, too_big = run(hostile_then_follow())
    assert [e["state"] for e in backlog] == ["queued", "running"]
    assert event["line"] == "still here" and event["id"] == backlog[-1]["id"] + 1
    assert too_big == "dropped"
    assert run(close_code(f"/ws/jobs/{job.pk}/?after={HUGE}")) == 4400
    assert run(close_code(f"/ws/jobs/{job.pk}/?after=x")) == 4400
    assert run(close_code(f"/ws/jobs/{HUGE}/")) == 4404
    assert run(close_code("/ws/nothing-here/")) == 4404
    assert "Exception inside application" not in portal_server.output()
    assert "Traceback" not in portal_server.output(), portal_server.output()[-8000:]
