"""A client-side multipart body streamed from disk, as a script sending a large file would."""

import http.client
import json
import os
import uuid
from urllib.parse import urlsplit


class MultipartFile:
    """File-like multipart/form-data body: fields, then one file read from disk in pieces."""

    def __init__(self, fields: dict, path, filename=None):
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        name = filename or os.path.basename(path)
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._parts = [head, open(path, "rb"), f"\r\n--{self.boundary}--\r\n".encode()]  # noqa: SIM115
        self.length = len(head) + os.path.getsize(path) + len(self._parts[2])
        self.content_type = f"multipart/form-data; boundary={self.boundary}"

    def read(self, size=-1):
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                piece, rest = (part, b"") if size < 0 else (part[:size], part[size:])
                if rest:
                    self._parts[0] = rest
                else:
                    self._parts.pop(0)
                return piece
            piece = part.read(size)
            if piece:
                return piece
            part.close()
            self._parts.pop(0)
        return b""


def post_file(url: str, token: str, fields: dict, path) -> tuple[int, dict]:
    body = MultipartFile(fields, path)
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=600, blocksize=1 << 20
    )
    connection.request(
        "POST",
        parts.path,
        body=body,
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": body.content_type,
            "Content-Length": str(body.length),
        },
    )
    response = connection.getresponse()
    return response.status, json.loads(response.read())
