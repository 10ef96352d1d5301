"""Kinds of uploaded files: telling them apart and checking them while the bytes stream in.

Each checker is fed the file chunk by chunk (`feed`) and then `finish`ed; it never holds more
than a bounded part of the file. A problem raises `FormatError` with a message for a scientist.
Checks run over whole chunks with bytes operations (find, translate, regular expressions), so a
gigabyte FASTA is checked at disk speed rather than line by line in Python.
"""

import codecs
import csv
import io
import re

import yaml


class FormatError(ValueError):
    pass


FASTA, A3M, CSV, TSV, YAML, PDB, MMCIF, SDF, MOL2 = (
    "fasta",
    "a3m",
    "csv",
    "tsv",
    "yaml",
    "pdb",
    "mmcif",
    "sdf",
    "mol2",
)
KINDS = [FASTA, A3M, CSV, TSV, YAML, PDB, MMCIF, SDF, MOL2]

EXTENSIONS = {
    ".fasta": FASTA,
    ".fa": FASTA,
    ".faa": FASTA,
    ".fna": FASTA,
    ".ffn": FASTA,
    ".fas": FASTA,
    ".a3m": A3M,
    ".csv": CSV,
    ".tsv": TSV,
    ".tab": TSV,
    ".yaml": YAML,
    ".yml": YAML,
    ".pdb": PDB,
    ".ent": PDB,
    ".cif": MMCIF,
    ".mmcif": MMCIF,
    ".sdf": SDF,
    ".sd": SDF,
    ".mol2": MOL2,
}
ACCEPTED = "FASTA, A3M, CSV, TSV, YAML, PDB, mmCIF, SDF or MOL2"

# Longest header or single CSV line we look at as a whole; a longer one is not a text format.
MAX_LINE = 1 << 20
# YAML is parsed whole, so it is kept small (Boltz inputs are a few kilobytes).
MAX_YAML = 16 << 20


def detect_kind(name: str, head: bytes) -> str:
    """The kind of a file from its name, else from its first bytes."""
    lower = name.lower()
    for ext, kind in EXTENSIONS.items():
        if lower.endswith(ext):
            return kind
    text = head.lstrip()
    if text.startswith(b">"):
        return FASTA
    if text.startswith(b"data_"):
        return MMCIF
    if text.startswith(b"@<TRIPOS>"):
        return MOL2
    if re.match(rb"(HEADER|ATOM  |HETATM|REMARK|CRYST1|MODEL )", text):
        return PDB
    raise FormatError(f"Cannot tell what kind of file '{name}' is; upload {ACCEPTED}.")


class TextChecker:
    """Refuses binary data and text that is not UTF-8.

    `locate(offset)` turns a byte offset into a line number for messages; the upload handler
    counts lines in what it has written, only when there is something to report, so the
    check itself never counts lines.
    """

    what = "text"

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.size = 0
        self.locate = None
        self._undecoded = False

    def line(self, offset: int) -> str:
        if self.locate is None:
            return f"Byte {offset + 1}"
        return f"Line {self.locate(offset)}"

    def feed(self, chunk: bytes) -> None:
        nul = chunk.find(b"\x00")
        if nul != -1:
            raise FormatError(
                f"This is a binary file, not {self.what}: it holds NUL bytes "
                f"(byte {self.size + nul + 1})."
            )
        if self._undecoded or not chunk.isascii():
            try:
                self._decoder.decode(chunk)
                # A character cut in two by the piece border waits in the decoder.
                self._undecoded = bool(self._decoder.getstate()[0])
            except UnicodeDecodeError:
                raise FormatError(
                    f"This is a binary file, or text in an unknown encoding, not {self.what}: "
                    "it is not valid UTF-8."
                ) from None
        self.size += len(chunk)

    def finish(self) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FormatError(
                f"This file ends in the middle of a character; not {self.what}."
            ) from None


# IUPAC one-letter codes cover every letter (B, J, O, U, X, Z included); '*' is a stop, '-'
# and '.' are gaps; lower case is soft-masking (FASTA) or an insertion (A3M).
_RESIDUE_BYTES = bytes(range(ord("A"), ord("Z") + 1)) + bytes(range(ord("a"), ord("z") + 1))
_SEQUENCE_ALLOWED = _RESIDUE_BYTES + b"*-.\r\n\t "
_WHITESPACE = b"\r\n\t "
_NOT_SEQUENCE = re.compile(rb"[^A-Za-z*\-.\r\n\t ]")


class FastaChecker(TextChecker):
    """FASTA: records of a `>` header line and sequence lines of residue letters.

    Works on blocks of whole lines with a few C-level passes per block, whatever the number of
    records in it (a gigabyte of UniProt holds millions): header lines are collapsed to a bare
    `>` marker, then one `translate` finds any byte that is no residue letter, and searches for
    markers with only blank space between them find records without a sequence.
    """

    what = "a FASTA file"

    def __init__(self):
        super().__init__()
        self.records = 0
        self._carry = b""  # the incomplete last line, waiting for its end
        self._carry_at = 0  # file offset of the carry's first byte
        self._mid_line = False  # the next line continues a long sequence line checked already
        self._last_name = ""  # header of the last record, its offset, and whether it has residues
        self._last_at = 0
        self._last_has_residues = False

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        start = 0
        if self._mid_line:
            nl = chunk.find(b"\n")
            self._sequence_only(chunk if nl == -1 else chunk[: nl + 1], self._carry_at)
            if nl == -1:
                self._carry_at += len(chunk)
                return
            self._mid_line = False
            self._carry_at += nl + 1
            start = nl + 1
        cut = chunk.rfind(b"\n") + 1
        if cut > start:
            # A newline in front makes every header line start with the literal b"\n>",
            # which the searches below find with a fast substring search.
            lines = b"".join((b"\n", self._carry, memoryview(chunk)[start:cut]))
            self._block(lines, self._carry_at)
            self._carry, self._carry_at = b"", self._carry_at + len(lines) - 1
            start = cut
        self._carry += chunk[start:]
        if len(self._carry) > MAX_LINE:
            if self._carry.startswith(b">"):
                raise FormatError(f"{self.line(self._carry_at)}: the header line is too long.")
            # A long unwrapped sequence line: check what has come of it and move on.
            self._sequence_only(self._carry, self._carry_at)
            self._carry_at += len(self._carry)
            self._carry, self._mid_line = b"", True

    def _sequence_only(self, part: bytes, at: int) -> None:
        if part.translate(None, _SEQUENCE_ALLOWED):
            self._bad_letter(b"\n" + part, at, header_lines=False)
        if _NON_BLANK.search(part):
            if self.records == 0:
                self._before_first_header(at)
            self._last_has_residues = True

    def _block(self, lines: bytes, at: int) -> None:
        """Check whole lines (`lines` starts with an added newline) from file offset `at`."""
        # Named header lines become a NUL marker: a byte that cannot occur in the file, as
        # TextChecker refused NUL already. A '>' left over is out of place or names nothing.
        sequence, headers = _HEADER_LINE.subn(b"\n\x00", lines)
        if sequence.translate(None, _SEQUENCE_ALLOWED_WITH_MARKER):
            self._bad_letter(lines, at)
        if not headers:
            if _NON_BLANK.search(sequence):
                if self.records == 0:
                    self._before_first_header(at)
                self._last_has_residues = True
            return
        first = sequence.index(b"\x00")
        if _NON_BLANK.search(sequence, 0, first):
            if self.records == 0:
                self._before_first_header(at)
            self._last_has_residues = True
        if self.records and not self._last_has_residues:
            self._empty_record(self._last_name, self._last_at)
        if _NO_SEQUENCE.search(sequence):
            self._find_empty_record(lines, at)
        last = lines.rfind(b"\n>")
        end = lines.index(b"\n", last + 1)
        self._last_name = _header_name(lines[last + 2 : end])
        self._last_at = at + last
        self._last_has_residues = bool(_NON_BLANK.search(lines, end))
        self.records += headers

    def _bad_letter(self, lines: bytes, at: int, header_lines: bool = True):
        # Slow path, taken once: find the first offending byte and its line.
        offset = 0
        for line in lines[1:].split(b"\n"):
            if header_lines and line.startswith(b">") and not line[1:].strip():
                where = self.line(at + offset)
                raise FormatError(f"{where}: a header line needs a name after '>'.")
            if not (header_lines and line.startswith(b">")):
                bad = _NOT_SEQUENCE.search(line)
                if bad:
                    where = self.line(at + offset + bad.start())
                    char = line[bad.start() : bad.start() + 1].decode("latin-1")
                    if char == ">":
                        raise FormatError(
                            f"{where}: '>' may only start a header line, not stand inside a "
                            "sequence."
                        )
                    raise FormatError(f"{where}: '{char}' is not a residue letter.")
            offset += len(line) + 1
        raise FormatError(f"{self.line(at)}: a character that is not a residue letter.")

    def _find_empty_record(self, lines: bytes, at: int):
        # Slow path, taken once.
        previous = None
        for header in _HEADER_LINE.finditer(lines):
            if previous is not None and not _NON_BLANK.search(
                lines, previous.end(), header.start()
            ):
                self._empty_record(_header_name(previous.group()[2:]), at + previous.start())
            previous = header

    def _before_first_header(self, at: int):
        raise FormatError(
            f"{self.line(at)}: sequence before the first header; a FASTA record starts "
            "with a line like '>name'."
        )

    def _empty_record(self, name: str, at: int):
        raise FormatError(f"{self.line(at)}: the record '{name}' has no sequence.")

    def finish(self) -> None:
        super().finish()
        if self._carry:
            self.feed(b"\n")
        if self.records == 0:
            raise FormatError("No FASTA records: a record starts with a line like '>name'.")
        if not self._last_has_residues:
            self._empty_record(self._last_name, self._last_at)


def _header_name(header: bytes) -> str:
    return header.strip().decode("utf-8", "replace")[:80]


# A header line with a name, from the newline before it on.
_HEADER_LINE = re.compile(rb"\n>[ \t\r]*[^ \t\r\n][^\n]*")
# Two header markers with only blank space between them: a record without a sequence.
_NO_SEQUENCE = re.compile(rb"\x00[ \t\r\n]*\n\x00")
_NON_BLANK = re.compile(rb"[^ \t\r\n]")
_SEQUENCE_ALLOWED_WITH_MARKER = _SEQUENCE_ALLOWED + b"\x00"


class A3mChecker(FastaChecker):
    """A3M: an alignment in FASTA form (lower case marks insertions, '-' deletions)."""

    what = "an A3M alignment"


def _looks_like_data(cell: str) -> bool:
    cell = cell.strip()
    try:
        float(cell)
        return True
    except ValueError:
        pass
    # A long run of residue letters is a sequence, not a column name.
    return len(cell) >= 10 and cell.isalpha() and cell.isupper()


class TableChecker(TextChecker):
    """CSV or TSV: a header row naming the columns, then rows of as many fields.

    The header and the rows of the first megabyte are parsed; the rest is checked to be text.
    """

    SAMPLE = 1 << 20

    def __init__(self, delimiter: str):
        super().__init__()
        self.delimiter = delimiter
        self.what = "a CSV file" if delimiter == "," else "a TSV file"
        self._sample = bytearray()
        self._checked = False
        self.columns: list[str] = []

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        if not self._checked:
            self._sample += chunk[: self.SAMPLE - len(self._sample) + MAX_LINE]
            if len(self._sample) >= self.SAMPLE:
                self._check_sample(complete=False)

    def _check_sample(self, complete: bool) -> None:
        self._checked = True
        data = bytes(self._sample)
        if not complete:
            nl = data.rfind(b"\n")
            if nl == -1:
                raise FormatError("The first line is too long for a table's header.")
            data = data[: nl + 1]
        text = data.decode("utf-8", "replace").lstrip("\ufeff")
        rows = csv.reader(io.StringIO(text), delimiter=self.delimiter)
        try:
            header = next(rows, None)
            while header is not None and not any(c.strip() for c in header):
                header = next(rows, None)
            if header is None:
                raise FormatError("The file holds no rows.")
            self._check_header(header)
            count = 0
            for number, row in enumerate(rows, start=2):
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise FormatError(
                        f"Row {number} has {len(row)} fields but the header names {len(header)} "
                        f"columns ({', '.join(header)})."
                    )
                count += 1
        except csv.Error as exc:
            raise FormatError(f"This is not a well-formed {self.what[2:]}: {exc}.") from None
        if count == 0 and complete:
            raise FormatError("The file has a header but no rows of data.")
        self.columns = header
        self._sample = bytearray()

    def _check_header(self, header: list[str]) -> None:
        if len(header) < 2 and self.delimiter == "," and "\t" in header[0]:
            raise FormatError("This looks tab-separated; name it .tsv, not .csv.")
        for index, cell in enumerate(header, start=1):
            if not cell.strip():
                raise FormatError(f"The header's column {index} has no name.")
            if _looks_like_data(cell):
                raise FormatError(
                    f"The first row looks like data, not a header (column {index} is "
                    f"'{cell[:40]}'). Add a first row naming the columns, e.g. 'sequence,label'."
                )
        names = [c.strip() for c in header]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FormatError(f"The header names a column twice: {', '.join(duplicates)}.")

    def finish(self) -> None:
        super().finish()
        if self.size == 0:
            raise FormatError("The file is empty.")
        if not self._checked:
            self._check_sample(complete=True)


class YamlChecker(TextChecker):
    what = "a YAML file"

    def __init__(self):
        super().__init__()
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        if len(self._data) + len(chunk) > MAX_YAML:
            raise FormatError("YAML files over 16 MB are not accepted.")
        self._data += chunk

    def finish(self) -> None:
        super().finish()
        try:
            document = yaml.safe_load(bytes(self._data))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or "it does not parse"
            raise FormatError(f"This YAML does not parse ({where}{problem}).") from None
        if not isinstance(document, dict | list):
            raise FormatError("The YAML holds no mapping or list.")


class MarkerChecker(TextChecker):
    """Structure formats, told by lines they must hold (looked for across chunk borders)."""

    def __init__(self, what: str, required: list[tuple[bytes, str]]):
        super().__init__()
        self.what = what
        self._required = {re.compile(pattern, re.MULTILINE): hint for pattern, hint in required}
        self._tail = b"\n"

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        window = self._tail + chunk
        for pattern in [p for p in self._required if p.search(window)]:
            del self._required[pattern]
        # Keep the start of the last line: a marker cut in two by the chunk border is then
        # found whole in the next window. A longer last line had its start matched already.
        cut = window.rfind(b"\n")
        self._tail = window[cut:] if cut != -1 and len(window) - cut < 64 else b""

    def finish(self) -> None:
        super().finish()
        if self._required:
            missing = "; ".join(self._required.values())
            raise FormatError(f"This is not {self.what}: {missing}.")


def checker_for(kind: str):
    if kind in (FASTA, A3M):
        return FastaChecker() if kind == FASTA else A3mChecker()
    if kind in (CSV, TSV):
        return TableChecker("," if kind == CSV else "\t")
    if kind == YAML:
        return YamlChecker()
    if kind == PDB:
        return MarkerChecker(
            "a PDB file", [(rb"^(ATOM  |HETATM)", "it has no ATOM or HETATM records")]
        )
    if kind == MMCIF:
        return MarkerChecker(
            "an mmCIF file",
            [
                (rb"^data_", "it has no data_ block"),
                (rb"^_atom_site\.", "it has no _atom_site table"),
            ],
        )
    if kind == SDF:
        return MarkerChecker("an SDF file", [(rb"^M  END", "no molecule ends with 'M  END'")])
    if kind == MOL2:
        return MarkerChecker(
            "a MOL2 file",
            [
                (rb"^@<TRIPOS>MOLECULE", "it has no @<TRIPOS>MOLECULE section"),
                (rb"^@<TRIPOS>ATOM", "it has no @<TRIPOS>ATOM section"),
            ],
        )
    raise FormatError(f"Unsupported kind '{kind}'; upload {ACCEPTED}.")


def check_bytes(name: str, data: bytes, piece_size: int = 1 << 20) -> str:
    """Check bytes held in memory (small inputs) as an upload would be; returns the kind."""
    if not data:
        raise FormatError("The file is empty.")
    kind = detect_kind(name, data[:4096])
    checker = checker_for(kind)
    checker.locate = lambda offset: data.count(b"\n", 0, offset) + 1
    for start in range(0, len(data), piece_size):
        checker.feed(data[start : start + piece_size])
    checker.finish()
    return kind
