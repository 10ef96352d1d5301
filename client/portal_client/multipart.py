"""A multipart/form-data body read from disk as it is sent, with its length known up front.

requests reads a body that has `read` and `__len__` block by block and sends a Content-Length,
so a file of any size streams from disk without being held in memory, and each block read is
a block sent: `on_read` sees the bytes go out (the progress bar).
"""

import uuid
from collections.abc import Callable
from pathlib import Path


def _quote(name: str) -> str:
    # As browsers do (the HTML standard): a quote or line break would end the header early.
    return name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFile:
    def __init__(
        self,
        fields: dict[str, str],
        file_field: str,
        path: Path,
        on_read: Callable[[int], object] = lambda n: None,
    ):
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(k)}"\r\n\r\n'
            f"{v}\r\n".encode()
            for k, v in fields.items()
        )
        head += (
            f"--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="{_quote(file_field)}"; filename="{_quote(path.name)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._head, self._tail = head, f"\r\n--{self.boundary}--\r\n".encode()
        self._size = self._left = path.stat().st_size
        self._file = open(path, "rb")  # noqa: SIM115  (closed when read to the end, or by close())
        self._on_read = on_read

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = len(self)
        out = b""
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
        if len(out) < size and not self._file.closed:
            # Never more than the length announced, should the file grow meanwhile.
            data = self._file.read(min(size - len(out), self._left))
            self._left -= len(data)
            self._on_read(len(data))
            out += data
            if not data:
                self._file.close()
        if len(out) < size and self._file.closed:
            taken = self._tail[: size - len(out)]
            self._tail = self._tail[len(taken) :]
            out += taken
        return out

    def close(self) -> None:
        self._file.close()
