"""The upload handler: SHA-256, size limit and format check while the body streams in.

The handler takes over the parsing of a multipart body (Django's documented
`handle_raw_input` hook) and streams it through python-multipart, which finds part borders
with a substring search instead of Django's chunk-by-chunk re-assembly (twenty times faster on
large files). Each piece of the file is then checked on this thread while a writer thread hashes
it and appends it to a temporary file in the work directory: one pass over the bytes, never a
second read to hash them, never the whole file in memory, and the two cores of a small server
both at work. The temporary file sits on the storage's filesystem, so storing it is a rename.
"""

import hashlib
import queue
import threading

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from portal.errors import PortalError
from portal.uploads.filenames import safe_filename
from portal.uploads.formats import FormatError, checker_for, detect_kind

FILE_FIELD = "file"
READ_SIZE = 4 << 20
# Form fields other than the file are small (a project id); more than this in all is not a
# form.
MAX_FIELD_BYTES = 64 * 1024


class UploadTooLarge(PortalError):
    status_code = 413
    default_code = "upload_too_large"


class UploadInvalid(PortalError):
    default_code = "upload_invalid"


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"The file is larger than this portal accepts ({limit:,} bytes; "
        "PORTAL_MAX_UPLOAD_BYTES sets the limit)."
    )


class _HashingWriter:
    """Hashes pieces and appends them to a file on a thread of its own.

    hashlib and file writes release the GIL, so this runs beside the format check. The queue
    is short: at most a few pieces wait in memory.
    """

    def __init__(self, file):
        self.file = file
        self.sha256 = hashlib.sha256()
        self._pieces = queue.Queue(maxsize=4)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="upload-writer", daemon=True)
        self._thread.start()

    def _run(self):
        while (piece := self._pieces.get()) is not None:
            if self._error is None:
                try:
                    self.sha256.update(piece)
                    self.file.write(piece)
                except OSError as exc:  # a full disk: reported by close()
                    self._error = exc

    def write(self, piece: bytes) -> None:
        self._pieces.put(piece)

    def close(self) -> str:
        """Wait for every piece; return the hex digest."""
        self._pieces.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.file.flush()
        return self.sha256.hexdigest()

    def line_at(self, offset: int) -> int:
        """The line number of a byte offset of the file written so far (for messages)."""
        self.close()
        self.file.seek(0)
        lines, done = 1, 0
        while done < offset and (piece := self.file.read(min(READ_SIZE, offset - done))):
            lines += piece.count(b"\n")
            done += len(piece)
        return lines


class _File:
    """The file part being received."""

    def __init__(self, name: str, content_type: str, limit: int):
        self.upload = TemporaryUploadedFile(name, content_type, 0, None)
        self.writer = _HashingWriter(self.upload.file)
        self.limit = limit
        self.size = 0
        self.kind = None
        self.checker = None

    def receive(self, piece: bytes) -> None:
        self.size += len(piece)
        if self.size > self.limit:
            raise too_large(self.limit)
        if self.checker is None:
            self.kind = detect_kind(self.upload.name, piece[:4096])
            self.checker = checker_for(self.kind)
            self.checker.locate = self.writer.line_at
        self.writer.write(piece)
        self.checker.feed(piece)

    def complete(self) -> TemporaryUploadedFile:
        if self.size == 0:
            raise UploadInvalid("The file is empty.")
        self.checker.finish()
        self.upload.sha256 = self.writer.close()
        self.upload.kind = self.kind
        self.upload.size = self.size
        self.upload.seek(0)
        return self.upload

    def discard(self) -> None:
        try:
            self.writer.close()
        except OSError:
            pass
        # Closing a NamedTemporaryFile deletes it: a refused upload leaves nothing on disk.
        self.upload.close()


class HashingUploadHandler(FileUploadHandler):
    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.PORTAL_MAX_UPLOAD_BYTES

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # The multipart envelope adds a little to the file; anything beyond that is over.
        if content_length and content_length > self.limit + MAX_FIELD_BYTES:
            raise too_large(self.limit)
        form = _FormReader(boundary, self.limit, encoding or settings.DEFAULT_CHARSET)
        try:
            while piece := input_data.read(READ_SIZE):
                form.write(piece)
            return form.finish()
        except FormatError as exc:
            form.discard()
            raise UploadInvalid(str(exc)) from None
        except MultipartParseError as exc:
            form.discard()
            raise UploadInvalid(f"The multipart body is malformed: {exc}.") from None
        except BaseException:
            form.discard()
            raise

    # Django asks these only of handlers that leave the parsing to it; this one never does.
    def receive_data_chunk(self, raw_data, start):
        raise NotImplementedError

    def file_complete(self, file_size):
        raise NotImplementedError


class _FormReader:
    """Drives python-multipart over a form with small fields and one file."""

    def __init__(self, boundary: bytes, limit: int, encoding: str):
        self.limit = limit
        self.encoding = encoding
        self.fields = QueryDict(mutable=True, encoding=encoding)
        self.files = MultiValueDict()
        self.file = None
        self._field_bytes = 0  # of all fields together: they are held in memory
        self._headers = {}
        self._header_field = b""
        self._header_value = b""
        self._part = None  # ("field", name, bytearray) or ("file", name, _File)
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def write(self, piece: bytes) -> None:
        self.parser.write(piece)

    def finish(self):
        self.parser.finalize()
        if self._part is not None:
            raise UploadInvalid("The multipart body ends in the middle of a part.")
        return self.fields, self.files

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()
        for _, uploads in self.files.lists():
            for upload in uploads:
                upload.close()

    def _part_begin(self):
        self._headers = {}

    def _header_field_data(self, data, start, end):
        self._header_field += data[start:end]

    def _header_value_data(self, data, start, end):
        self._header_value += data[start:end]

    def _header_end(self):
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self):
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode(self.encoding, "replace")
        # One file and each field once: a second of either would silently replace the first.
        if name in self.fields or name in self.files:
            raise UploadInvalid(f"The form sends '{name}' twice; send it once.")
        if b"filename" not in options:
            self._part = ("field", name, bytearray())
            return
        if name != FILE_FIELD:
            raise UploadInvalid(f"Send exactly one file, in the field '{FILE_FIELD}'.")
        filename = safe_filename(options[b"filename"].decode(self.encoding, "replace"))
        content_type = self._headers.get(b"content-type", b"application/octet-stream")
        self.file = _File(filename, content_type.decode("latin-1"), self.limit)
        self._part = ("file", name, self.file)

    def _part_data(self, data, start, end):
        kind, _, target = self._part
        if kind == "file":
            target.receive(data[start:end])
        else:
            target += data[start:end]
            self._field_bytes += end - start
            if self._field_bytes > MAX_FIELD_BYTES:
                raise PortalError(
                    f"The form's fields other than the file hold more than {MAX_FIELD_BYTES:,} "
                    "bytes.",
                    code="request_too_large",
                    status_code=413,
                )

    def _part_end(self):
        kind, name, target = self._part
        if kind == "file":
            self.files.appendlist(name, target.complete())
            self.file = None
        else:
            self.fields.appendlist(name, target.decode(self.encoding, "replace"))
        self._part = None
