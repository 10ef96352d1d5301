"""A client of an MMseqs2 / ColabFold MSA server, speaking the protocol boltz speaks
(`boltz/data/msa/mmseqs2.py`): submit the queries as FASTA (`POST {url}/ticket/msa`, mode
`env`, or `POST {url}/ticket/pair`, mode `pairgreedy-env`), poll `GET {url}/ticket/{id}`
until COMPLETE, fetch `GET {url}/result/download/{id}`: a tar.gz of A3M files whose records
are grouped per query (a NUL byte before each query's block, whose first header is the
query's number, 101 for the first).

Unlike boltz's loop it never waits unbounded: RATELIMIT, MAINTENANCE, UNKNOWN and network
errors are retried with a growing pause until `timeout` seconds have passed since the search
began, then the search fails with the last reason.
"""

import io
import random
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from django.conf import settings

from msa.errors import MsaError, pause

FIRST_QUERY = 101  # the number the protocol gives the first query
UNPAIRED_FILES = ("uniref.a3m", "bfd.mgnify30.metaeuk30.smag30.a3m")
PAIRED_FILE = "pair.a3m"
RETRY = {"RATELIMIT", "MAINTENANCE", "UNKNOWN"}
WAITING = {"PENDING", "RUNNING"}


class MsaServerError(MsaError):
    """The server could not give the MSA; the message says why, for the job's reason."""


@dataclass(frozen=True)
class MsaServer:
    url: str
    username: str = ""
    password: str = ""
    api_key: str = ""
    api_key_header: str = "X-API-Key"
    poll: float = 5.0  # seconds between status checks, and the first pause after a refusal
    timeout: float = 1800.0  # the longest a search may take, refusals and waiting included
    source = "server"
    database = ""  # a server's databases are its own business
    version = ""

    @property
    def where(self) -> str:
        return self.url

    @classmethod
    def configured(cls) -> "MsaServer | None":
        """The server the operator configured (PORTAL_MSA_SERVER_URL), or None: then no
        sequence is ever sent anywhere."""
        if not settings.PORTAL_MSA_SERVER_URL:
            return None
        return cls(
            url=settings.PORTAL_MSA_SERVER_URL.rstrip("/"),
            username=settings.PORTAL_MSA_SERVER_USERNAME,
            password=settings.PORTAL_MSA_SERVER_PASSWORD,
            api_key=settings.PORTAL_MSA_SERVER_API_KEY,
            api_key_header=settings.PORTAL_MSA_SERVER_API_KEY_HEADER,
            poll=settings.PORTAL_MSA_SERVER_POLL,
            timeout=settings.PORTAL_MSA_SERVER_TIMEOUT,
        )

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers["User-Agent"] = "science-portal"
        if self.api_key:
            session.headers[self.api_key_header] = self.api_key
        elif self.username:
            session.auth = (self.username, self.password)
        return session

    def search(
        self,
        sequences: list[str],
        *,
        paired: bool,
        say: Callable[[str], None] = print,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """One search of the sequences (distinct, in order): each one's A3M text, starting
        with the query. Paired: the rows of all chains line up, row by row. Setting `stop`
        ends it (MsaStopped) at its next pause."""
        deadline = time.monotonic() + self.timeout
        backoff = self.poll
        query = "".join(f">{FIRST_QUERY + i}\n{s}\n" for i, s in enumerate(sequences))
        endpoint, mode = ("ticket/pair", "pairgreedy-env") if paired else ("ticket/msa", "env")
        session = self._session()

        def call(method: str, path: str, **kwargs) -> requests.Response:
            while True:
                try:
                    response = session.request(method, f"{self.url}/{path}", timeout=30, **kwargs)
                    if response.status_code < 500:
                        return response
                    problem = f"the server answered {response.status_code}"
                except requests.RequestException as exc:
                    problem = f"the server cannot be reached ({type(exc).__name__})"
                wait(problem)

        def wait(problem: str) -> None:
            nonlocal backoff
            if time.monotonic() + backoff > deadline:
                raise MsaServerError(
                    f"The MSA server at {self.url} gave no MSA within {self.timeout:.0f} s: "
                    f"{problem}."
                )
            say(f"MSA server: {problem}; trying again in {backoff:.0f} s")
            pause(backoff * (1 + random.random() / 4), stop)  # noqa: S311  (jitter, not a secret)
            backoff = min(backoff * 2, 60.0)

        def answer(response: requests.Response) -> dict:
            if response.status_code in (401, 403):
                raise MsaServerError(
                    f"The MSA server at {self.url} refused the portal's credentials "
                    f"({response.status_code})."
                )
            try:
                return response.json()
            except ValueError:
                return {"status": "UNKNOWN"}

        while True:
            ticket = answer(call("POST", endpoint, data={"q": query, "mode": mode}))
            status = ticket.get("status", "UNKNOWN")
            if status in RETRY:
                wait(f"it says {status}")
                continue
            if status == "ERROR":
                raise MsaServerError(
                    f"The MSA server at {self.url} could not search these sequences."
                )
            break
        backoff = self.poll
        began, said = time.monotonic(), (None, 0.0)
        while status in WAITING or status in RETRY:
            # Said when it changes and every minute: a search's job is never silent for long.
            now = time.monotonic()
            if status != said[0] or now - said[1] >= 60:
                say(f"MSA server: {status} ({now - began:.0f} s)")
                said = (status, now)
            if time.monotonic() > deadline:
                raise MsaServerError(
                    f"The MSA server at {self.url} had not finished within {self.timeout:.0f} s "
                    f"(it says {status})."
                )
            pause(self.poll, stop)
            status = answer(call("GET", f"ticket/{ticket['id']}")).get("status", "UNKNOWN")
        if status != "COMPLETE":
            raise MsaServerError(f"The MSA server at {self.url} ended the search with {status}.")
        archive = call("GET", f"result/download/{ticket['id']}")
        if archive.status_code != 200:
            raise MsaServerError(
                f"The MSA server at {self.url} did not give the result ({archive.status_code})."
            )
        return read_result(archive.content, len(sequences), paired=paired)


def read_result(archive: bytes, count: int, *, paired: bool) -> list[str]:
    """Each query's A3M text out of a result archive: the paired file's block, or the
    unpaired files' blocks one after the other (the query once, at the top)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            names = (PAIRED_FILE,) if paired else UNPAIRED_FILES
            texts = []
            for name in names:
                member = tar.extractfile(name) if name in tar.getnames() else None
                if member is not None:
                    texts.append(member.read().decode("utf-8", errors="replace"))
    except (tarfile.TarError, EOFError) as exc:
        raise MsaServerError(f"The MSA server's result is not a readable archive: {exc}") from None
    if not texts:
        raise MsaServerError(f"The MSA server's result has none of {', '.join(names)}.")
    queries: dict[int, str] = {}  # each query's own line
    hits: dict[int, list[str]] = {}  # its hits' records, file after file
    for text in texts:
        for number, query, records in _blocks(text):
            queries.setdefault(number, query)
            hits.setdefault(number, []).extend(records)
    missing = [FIRST_QUERY + i for i in range(count) if FIRST_QUERY + i not in queries]
    if missing:
        raise MsaServerError(f"The MSA server's result lacks queries {missing}.")
    return [
        f">{number}\n{queries[number]}\n" + "".join(hits[number])
        for number in range(FIRST_QUERY, FIRST_QUERY + count)
    ]


def _blocks(text: str):
    """(query number, query sequence, [hit records]) of each block of an A3M file of the
    protocol: blocks start after a NUL byte, each with its query's header and sequence."""
    for block in text.split("\x00"):
        lines = [line for line in block.splitlines() if line.strip()]
        if len(lines) < 2 or not lines[0].startswith(">"):
            continue
        try:
            number = int(lines[0][1:].split()[0])
        except (ValueError, IndexError):
            continue
        records, current = [], []
        for line in lines[2:]:
            if line.startswith(">") and current:
                records.append("\n".join(current) + "\n")
                current = []
            current.append(line)
        if current:
            records.append("\n".join(current) + "\n")
        yield number, lines[1], records
