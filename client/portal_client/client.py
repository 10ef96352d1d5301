"""`Portal`: the portal's API for scripts, over HTTP with an API token (`Authorization: Token`).

Every call answers the API's JSON (a dict, or a list of them) or raises `PortalError` with the
API's stable error code.
"""

import hashlib
import json
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from tqdm import tqdm
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from portal_client import config
from portal_client.errors import DigestMismatch, PortalError
from portal_client.multipart import MultipartFile

FINAL_STATES = ("succeeded", "failed", "cancelled")

# How the job stream says no (jobs/consumers.py, portal/live.py): these are answers, not drops,
# so they are raised rather than retried.
_WS_REFUSALS = {
    4400: ("bad_request", "The stream refused the event id to resume after.", 400),
    4401: ("not_authenticated", "The stream needs a valid API token.", 401),
    4403: ("permission_denied", "You may not follow this job.", 403),
    4404: ("not_found", "No such job, or you may not see it.", 404),
}
# Answers worth sending again unchanged (with the same Idempotency-Key for a create).
_RETRY_STATUSES = {429, 502, 503, 504}
CHUNK = 1 << 20


class Portal:
    """The portal at `url` as the owner of `token` sees it.

    Both default to the environment (`PORTAL_URL`, `PORTAL_TOKEN`), then to
    `~/.config/portal/config.toml` (keys `url` and `token`; `$XDG_CONFIG_HOME` is honoured).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout=60):
        url = config.resolve("url", url)
        if not url:
            raise PortalError(
                "no_url",
                f"Say where the portal is: Portal(url), PORTAL_URL or {config.config_path()}.",
            )
        self.url = url.rstrip("/")
        self.token = config.resolve("token", token)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "portal-client/0.1"
        if self.token:
            self.session.headers["Authorization"] = f"Token {self.token}"

    # --- plain calls -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, retries: int = 0, **kwargs) -> requests.Response:
        """One call to the API (`path` from `/api/v1/...`); an error answer raises PortalError.

        With `retries`, a dropped connection, a timeout or a busy answer (429, 502-504) is sent
        again, identical, after a growing pause: safe for reads and for creates that carry an
        Idempotency-Key.
        """
        kwargs.setdefault("timeout", (10, self.timeout))
        for attempt in range(retries + 1):
            try:
                response = self.session.request(method, self.url + path, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == retries:
                    raise PortalError("connection_failed", str(exc)) from exc
                time.sleep(min(0.5 * 2**attempt, 10))
                continue
            if response.status_code in _RETRY_STATUSES and attempt < retries:
                wait = response.headers.get("Retry-After", "")
                time.sleep(float(wait) if wait.isdigit() else min(0.5 * 2**attempt, 10))
                continue
            if response.status_code >= 400:
                raise PortalError.from_response(response)
            return response
        raise AssertionError("unreachable")

    def get(self, path: str, **params):
        return self.request("GET", path, params=params or None, retries=3).json()

    def pages(self, path: str, **params) -> Iterator[dict]:
        """Every item of a paginated list, page after page."""
        page = 1
        while True:
            answer = self.get(path, **params, page=page)
            yield from answer["results"]
            if not answer.get("next"):
                return
            page += 1

    def projects(self) -> list[dict]:
        """The projects this token's user belongs to: `{id, name, description, my_role}` each."""
        return list(self.pages("/api/v1/projects/"))

    def project_id(self, project: int | str) -> int:
        """A project's id from its id or its name (PortalError if none or several match)."""
        if isinstance(project, int) or str(project).isdigit():
            return int(project)
        matches = [p["id"] for p in self.projects() if p["name"] == project]
        if len(matches) != 1:
            known = ", ".join(f"{p['name']} ({p['id']})" for p in self.projects()) or "none"
            raise PortalError(
                "project_unknown",
                f"{'No' if not matches else 'More than one'} project is named '{project}'; "
                f"yours: {known}.",
            )
        return matches[0]

    def jobs(self, **filters) -> Iterator[dict]:
        """The jobs this token's user sees, newest first (filters: project, state, kind)."""
        return self.pages("/api/v1/jobs/", **{k: v for k, v in filters.items() if v is not None})

    def job(self, job_id: int) -> dict:
        return self.get(f"/api/v1/jobs/{int(job_id)}/")

    def artifacts(self, job_id: int) -> list[dict]:
        """The job's artifacts: `{name, size, sha256, created_at}` each."""
        return self.get(f"/api/v1/jobs/{int(job_id)}/artifacts/")

    # --- uploads -----------------------------------------------------------------------------

    def find_upload(self, project: int, sha256: str) -> dict | None:
        """The project's upload with these bytes, if there is one."""
        found = self.get("/api/v1/uploads/", project=int(project), sha256=sha256)["results"]
        return found[0] if found else None

    def upload(self, project: int, path, progress: bool = True) -> dict:
        """Upload a file to a project, unless the project has those bytes already: its digest is
        asked first, and the bytes are sent only when the portal lacks them (streamed from disk,
        with a progress bar of the bytes sent). Answers the upload."""
        path = Path(path)
        digest = _sha256_of(path, progress)
        if (found := self.find_upload(project, digest)) is not None:
            return found
        with tqdm(
            total=path.stat().st_size,
            desc=f"upload {path.name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not progress,
        ) as bar:
            body = MultipartFile({"project": str(int(project))}, "file", path, bar.update)
            try:
                response = self.request(
                    "POST",
                    "/api/v1/uploads/",
                    data=body,
                    headers={"Content-Type": body.content_type},
                    # The portal answers once it has checked and stored the whole file.
                    timeout=(10, max(self.timeout, 600)),
                )
            finally:
                body.close()
        return response.json()

    # --- jobs --------------------------------------------------------------------------------

    def submit(self, spec: dict | list[dict], idempotency_key: str | None = None):
        """Submit one job (a dict as `POST /api/v1/jobs/` takes it) and answer it, or a batch (a
        list of them, all created or none) and answer the list of jobs.

        The request carries an Idempotency-Key (a new one unless given), and a dropped
        connection or a timeout is retried with the same key: the portal answers a repeat with
        its first answer, so nothing is created twice.
        """
        key = idempotency_key or uuid.uuid4().hex
        batch = isinstance(spec, list)
        response = self.request(
            "POST",
            "/api/v1/jobs/batch/" if batch else "/api/v1/jobs/",
            json={"jobs": spec} if batch else spec,
            headers={"Idempotency-Key": key},
            retries=5,
        )
        answer = response.json()
        return answer["results"] if batch else answer

    def follow(self, job_id: int, after: int = 0, *, give_up_after: float = 120) -> Iterator[dict]:
        """The job's events after event id `after`, live, each once and in order, ending with
        the state event that ends the job: `{"id", "type": "log"|"metric"|"progress"|"state",
        "at", ...}` (a log has `line`, a metric `step`, `name`, `value`, progress `percent`,
        `message`, a state `state`, `reason`).

        Read over the job's WebSocket, authenticated with the token. A dropped connection is
        opened again from the last event id seen; the portal then sends only what came after
        it. Gives up (PortalError) when it cannot connect for `give_up_after` seconds.
        """
        job_id, last = int(job_id), int(after)
        headers = {"Authorization": f"Token {self.token}"} if self.token else {}
        failing_since, pause = None, 0.1
        while True:
            try:
                with connect(
                    self._ws_url(f"/ws/jobs/{job_id}/?after={last}"),
                    additional_headers=headers,
                    open_timeout=10,
                ) as socket:
                    failing_since, pause = None, 0.1
                    for message in socket:
                        event = json.loads(message)
                        if event["id"] <= last:
                            continue  # already seen (the portal does not resend; be sure)
                        last = event["id"]
                        yield event
                        if event["type"] == "state" and event["state"] in FINAL_STATES:
                            return
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
                if code in _WS_REFUSALS:
                    raise PortalError(*_WS_REFUSALS[code]) from None
            except InvalidStatus as exc:
                # The HTTP answer of something in between that does not speak WebSocket.
                status = exc.response.status_code
                if status < 500:
                    refused = PortalError(f"http_{status}", "The job stream was refused.", status)
                    raise refused from None
            except (OSError, InvalidHandshake, TimeoutError):
                pass
            # Dropped, or not there yet: connect again from the last event seen.
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > give_up_after:
                raise PortalError("connection_failed", f"Lost the stream of job {job_id}.")
            time.sleep(pause)
            pause = min(pause * 2, 5)

    def wait(self, job_id: int) -> dict:
        """Follow the job to its end; answer the job as it ended."""
        for _ in self.follow(job_id):
            pass
        return self.job(job_id)

    def download(self, job_id: int, dest=".", name: str | None = None, progress=True) -> Path:
        """Download one artifact (`name`) or all as the ZIP archive (no name) to `dest` (a file,
        or a directory to put it in: one that exists, or a path ending in `/`), streamed, with a
        progress bar. Each artifact's SHA-256 is checked against the job's listing (in a ZIP,
        each member's); a mismatch raises DigestMismatch and leaves nothing at `dest`. Answers
        the path written."""
        job_id = int(job_id)
        listing = {a["name"]: a for a in self.artifacts(job_id)}
        if name is not None and name not in listing:
            raise PortalError("not_found", f"Job {job_id} has no artifact {name!r}.", 404)
        default = Path(name).name if name is not None else f"job-{job_id}.zip"
        # A directory: one that exists, or a path written with a trailing slash (`-o out/`).
        folder = str(dest).endswith(("/", os.sep)) or Path(dest).is_dir()
        dest = Path(dest)
        target = dest / default if folder else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        path = (
            f"/api/v1/jobs/{job_id}/artifacts/{quote(name, safe='/')}"
            if name is not None
            else f"/api/v1/jobs/{job_id}/archive/"
        )
        # Written beside the target and moved there once checked: an unchecked file never
        # sits under the name asked for.
        fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = self._stream(path, out, target.name, progress)
            if name is not None:
                _check(name, digest, listing[name]["sha256"])
            else:
                _check_archive(partial, listing)
            os.replace(partial, target)
        except BaseException:
            os.unlink(partial)
            raise
        return target

    # --- helpers -----------------------------------------------------------------------------

    def _stream(self, path: str, out, label: str, progress: bool) -> str:
        """Write the answer to `path` into `out` as it arrives; answer its SHA-256."""
        response = self.request("GET", path, stream=True, retries=3)
        digest = hashlib.sha256()
        length = response.headers.get("Content-Length")
        with (
            response,
            tqdm(
                total=int(length) if length and length.isdigit() else None,
                desc=f"download {label}",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not progress,
            ) as bar,
        ):
            try:
                for chunk in response.iter_content(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            except requests.RequestException as exc:
                raise PortalError("connection_failed", f"The download broke off: {exc}") from exc
        return digest.hexdigest()

    def _ws_url(self, path: str) -> str:
        parts = urlsplit(self.url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", "")) + path


def _sha256_of(path: Path, progress: bool) -> str:
    digest = hashlib.sha256()
    with (
        open(path, "rb") as f,
        tqdm(
            total=path.stat().st_size,
            desc=f"sha256 {path.name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not progress,
            leave=False,
        ) as bar,
    ):
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _check(name: str, got: str, listed: str) -> None:
    if got != listed.lower():
        raise DigestMismatch(f"{name}: SHA-256 {got}, but the portal lists {listed}.")


# What an archive holds besides the job's artifacts: its provenance manifest and the job's log.
ARCHIVE_OWN = {"manifest.json", "log.txt"}


def _check_archive(path, listing: dict[str, dict]) -> None:
    """Every listed artifact is in the ZIP with the listed digest, and nothing else is but the
    archive's own files (a job's artifact may be named as one of them: it is checked)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = set(archive.namelist()) - (ARCHIVE_OWN - set(listing))
            if members != set(listing):
                raise DigestMismatch(
                    f"The archive holds {sorted(members)}, the listing {sorted(listing)}."
                )
            for name in sorted(members):
                digest = hashlib.sha256()
                with archive.open(name) as member:
                    while chunk := member.read(CHUNK):
                        digest.update(chunk)
                _check(name, digest.hexdigest(), listing[name]["sha256"])
    except zipfile.BadZipFile as exc:  # also a member whose CRC does not match
        raise DigestMismatch(f"The archive is damaged: {exc}") from exc
