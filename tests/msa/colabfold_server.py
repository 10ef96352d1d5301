"""A ColabFold-protocol MSA server of our own, on loopback, for the tests: a real HTTP server
(submit, status, download) that builds its result archives from the queries it was sent.

Each query gets `depth` made-up homologues (the query with a few residues changed, one with
an insertion); a paired search gives every chain the same number of rows, row i of each chain
from the same made-up species. The first `ratelimit` submissions are answered RATELIMIT; a
ticket reads PENDING, then RUNNING (for as long as `hold`, an Event, is not set, if given), then
COMPLETE. It counts the searches it accepted, and the
most it had under way at once (from a ticket's submission to its download)."""

import io
import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.conftest import free_port

AMINO = "ACDEFGHIKLMNPQRSTVWY"
UNPAIRED = ("uniref.a3m", "bfd.mgnify30.metaeuk30.smag30.a3m")


def homologue(sequence: str, row: int) -> str:
    letters = list(sequence)
    for k in range(1 + row % 3):
        position = (row * 7 + k * 5) % len(letters)
        letters[position] = AMINO[(AMINO.index(letters[position]) + row + 1) % len(AMINO)]
    return "".join(letters)


def a3m_block(number: int, sequence: str, rows: list[str]) -> str:
    body = "".join(f">{number}_{i} made-up homologue\n{row}\n" for i, row in enumerate(rows))
    return f"\x00>{number}\n{sequence}\n{body}"


class ColabFoldServer:
    def __init__(self, *, depth: int = 4, ratelimit: int = 0, api_key: str = ""):
        self.depth, self.ratelimit, self.api_key = depth, ratelimit, api_key
        self.lock = threading.Lock()
        self.tickets: dict[str, dict] = {}
        self.searches: list[dict] = []  # accepted submissions: {mode, sequences}
        self.refused = 0
        self.hold: threading.Event | None = None
        self.under_way = 0
        self.most_at_once = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.http.shutdown()
        self.http.server_close()

    def archive(self, ticket: dict) -> bytes:
        sequences, mode = ticket["sequences"], ticket["mode"]
        files = {}
        if mode.startswith("pair"):
            files["pair.a3m"] = "".join(
                a3m_block(101 + i, s, [homologue(s, 10 + r) for r in range(self.depth)])
                for i, s in enumerate(sequences)
            )
        else:
            for offset, name in enumerate(UNPAIRED):
                files[name] = "".join(
                    a3m_block(
                        101 + i,
                        s,
                        [homologue(s, 20 * offset + r) for r in range(self.depth)]
                        + ([s[:3] + "gg" + s[3:]] if offset == 0 else []),
                    )
                    for i, s in enumerate(sequences)
                )
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, kind="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, value: dict):
                self._send(200, json.dumps(value).encode())

            def _allowed(self) -> bool:
                if server.api_key and self.headers.get("X-API-Key") != server.api_key:
                    self._send(401, b'{"error": "unauthorized"}')
                    return False
                return True

            def do_POST(self):
                if not self._allowed():
                    return
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                query, mode = form.get("q", [""])[0], form.get("mode", [""])[0]
                sequences = [line for line in query.splitlines() if line and line[0] != ">"]
                with server.lock:
                    if server.refused < server.ratelimit:
                        server.refused += 1
                        return self._json({"status": "RATELIMIT"})
                    ticket = f"t{len(server.tickets) + 1}"
                    server.tickets[ticket] = {
                        "sequences": sequences,
                        "mode": mode,
                        "polls": 0,
                        "path": self.path,
                    }
                    server.searches.append({"mode": mode, "sequences": sequences})
                    server.under_way += 1
                    server.most_at_once = max(server.most_at_once, server.under_way)
                self._json({"id": ticket, "status": "PENDING"})

            def do_GET(self):
                if not self._allowed():
                    return
                parts = self.path.strip("/").split("/")
                if parts[:1] == ["ticket"] and parts[1] in server.tickets:
                    ticket = server.tickets[parts[1]]
                    ticket["polls"] += 1
                    status = (
                        ["PENDING", "RUNNING"][ticket["polls"] - 1]
                        if ticket["polls"] < 3
                        else "COMPLETE"
                    )
                    if server.hold is not None and not server.hold.is_set():
                        status = "RUNNING"
                    return self._json({"id": parts[1], "status": status})
                if parts[:2] == ["result", "download"] and parts[2] in server.tickets:
                    ticket = server.tickets[parts[2]]
                    with server.lock:
                        server.under_way -= 1
                    time.sleep(0.01)
                    return self._send(200, server.archive(ticket), "application/octet-stream")
                self._send(404, b'{"error": "no such ticket"}')

        return Handler
