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


FASTA, A3M, CSV, TSV, YAML, JSON, PDB, MMCIF, SDF, MOL2, SMI = (
    "fasta",
    "a3m",
    "csv",
    "tsv",
    "yaml",
    "json",
    "pdb",
    "mmcif",
    "sdf",
    "mol2",
    "smi",
)
KINDS = [FASTA, A3M, CSV, TSV, YAML, JSON, PDB, MMCIF, SDF, MOL2, SMI]

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
    ".json": JSON,
    ".pdb": PDB,
    ".ent": PDB,
    ".cif": MMCIF,
    ".mmcif": MMCIF,
    ".sdf": SDF,
    ".sd": SDF,
    ".mol": SDF,  # one molfile: an SDF of one molecule
    ".mol2": MOL2,
    ".smi": SMI,
    ".smiles": SMI,
}
ACCEPTED = "FASTA, A3M, CSV, TSV, YAML, JSON, PDB, mmCIF, SDF, MOL2 or SMILES (.smi)"

# Longest header or single CSV line we look at as a whole; a longer one is not a text format.
MAX_LINE = 1 << 20
# YAML is parsed whole, so it is kept small (Boltz inputs are a few kilobytes).
MAX_YAML = 16 << 20
# JSON too; AlphaFold 3's inputs carry their MSAs inline, so they may be larger.
MAX_JSON = 256 << 20


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
    # boltz's FASTA names a ligand by SMILES or CCD code (`>B|smiles`, `>C|ccd`): such a
    # record's lines are no residue letters (see `_ligands_as_residues`).
    ligand_records = True

    def __init__(self):
        super().__init__()
        self._in_ligand = False  # the last record seen is a ligand's
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
        if self._in_ligand:
            self._last_has_residues = self._last_has_residues or bool(_NON_BLANK.search(part))
            return
        if part.translate(None, _SEQUENCE_ALLOWED):
            self._bad_letter(b"\n" + part, at, header_lines=False)
        if _NON_BLANK.search(part):
            if self.records == 0:
                self._before_first_header(at)
            self._last_has_residues = True

    def _block(self, lines: bytes, at: int) -> None:
        """Check whole lines (`lines` starts with an added newline) from file offset `at`."""
        if self.ligand_records and (self._in_ligand or _LIGAND_HEADER.search(lines)):
            lines = self._ligands_as_residues(lines)
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

    def _ligands_as_residues(self, lines: bytes) -> bytes:
        """`lines` with each non-blank line of a ligand's record replaced by one residue letter
        of the same length (offsets and line numbers stay), so that the checks below take it as
        a record with a sequence. Only blocks that hold a ligand take this path."""
        parts = lines.split(b"\n>")
        for index, part in enumerate(parts):
            if index:
                header, newline, body = part.partition(b"\n")
                self._in_ligand = bool(_LIGAND_HEADER.match(b"\n>" + header))
                part_head = header + newline
            else:
                part_head, body = b"", part
            if self._in_ligand:
                body = _NON_BLANK_LINE.sub(lambda m: b"X" * len(m.group()), body)
            parts[index] = part_head + body
        return b"\n>".join(parts)

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
# boltz's header of a ligand's record: `>CHAIN|smiles` or `>CHAIN|ccd`.
_LIGAND_HEADER = re.compile(rb"\n>[ \t]*[^|\s]+\|(?:smiles|ccd)[ \t\r]*(?=\n|$)", re.IGNORECASE)
_NON_BLANK_LINE = re.compile(rb"[^\n]*[^ \t\r\n][^\n]*")
# Two header markers with only blank space between them: a record without a sequence.
_NO_SEQUENCE = re.compile(rb"\x00[ \t\r\n]*\n\x00")
_NON_BLANK = re.compile(rb"[^ \t\r\n]")
_SEQUENCE_ALLOWED_WITH_MARKER = _SEQUENCE_ALLOWED + b"\x00"


class A3mChecker(FastaChecker):
    """A3M: an alignment in FASTA form (lower case marks insertions, '-' deletions)."""

    what = "an A3M alignment"
    ligand_records = False


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


# YAML nests mappings and lists as JSON does (portal/parsers.py bounds JSON alike), and its
# aliases may repeat an anchored part; a "billion laughs" document repeats one a billion times
# through aliases of aliases. Bounds far beyond any real input (a Boltz YAML has a few levels
# and no aliases):
YAML_MAX_DEPTH = 32
YAML_MAX_ALIASED_NODES = 10_000
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where built in


def load_yaml(data: bytes):
    """Parse one YAML document whose nesting and alias expansion are bounded.

    The parser's events are read first (no document is built yet, and nothing recurses): each
    alias adds the number of nodes of the part it repeats, so the expansion a document would
    make is counted before it is made. Raises FormatError.
    """
    open_parts = []  # [anchor, nodes] of each mapping or list being read
    sizes = {}  # nodes of each anchored part, once it is complete
    aliased = 0
    try:
        for event in yaml.parse(data, Loader=_YAML_LOADER):
            if isinstance(event, yaml.CollectionStartEvent):
                if len(open_parts) == YAML_MAX_DEPTH:
                    raise FormatError(
                        f"Line {event.start_mark.line + 1}: this YAML nests deeper than "
                        f"{YAML_MAX_DEPTH} levels."
                    )
                open_parts.append([event.anchor, 1])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                anchor, nodes = open_parts.pop()
            elif isinstance(event, yaml.ScalarEvent):
                anchor, nodes = event.anchor, 1
            elif isinstance(event, yaml.AliasEvent):
                anchor, nodes = None, sizes.get(event.anchor)
                if nodes is None:
                    raise FormatError(
                        f"Line {event.start_mark.line + 1}: the alias *{event.anchor} repeats "
                        "a part that contains it, or one not defined before it."
                    )
                aliased += nodes
                if aliased > YAML_MAX_ALIASED_NODES:
                    raise FormatError(
                        "This YAML's aliases (*name) would repeat more than "
                        f"{YAML_MAX_ALIASED_NODES:,} values; write the values out instead."
                    )
            else:
                continue
            if anchor is not None:
                sizes[anchor] = nodes
            if open_parts:
                open_parts[-1][1] += nodes
        return yaml.load(data, Loader=_YAML_LOADER)  # noqa: S506  (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        raise FormatError(f"This YAML does not parse ({where}{problem}).") from None


class WholeChecker(TextChecker):
    """A format parsed whole once all of it is in (`parse`), up to `limit` bytes."""

    label = ""
    limit = 0

    def __init__(self):
        super().__init__()
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        if len(self._data) + len(chunk) > self.limit:
            raise FormatError(f"{self.label} files over {self.limit >> 20} MB are not accepted.")
        self._data += chunk

    def finish(self) -> None:
        super().finish()
        self.parse(bytes(self._data))

    def parse(self, data: bytes) -> None:
        raise NotImplementedError


class YamlChecker(WholeChecker):
    what, label, limit = "a YAML file", "YAML", MAX_YAML

    def parse(self, data: bytes) -> None:
        if not isinstance(load_yaml(data), dict | list):
            raise FormatError("The YAML holds no mapping or list.")


def load_json(data: bytes):
    """Parse a JSON document; raises FormatError, naming the place of a syntax error."""
    import json

    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise FormatError(f"Line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except RecursionError:
        raise FormatError("This JSON nests too deeply to read.") from None
    except UnicodeDecodeError:
        raise FormatError("This JSON is not valid UTF-8.") from None


class JsonChecker(WholeChecker):
    what, label, limit = "a JSON file", "JSON", MAX_JSON

    def parse(self, data: bytes) -> None:
        if not isinstance(load_json(data), dict | list):
            raise FormatError("The JSON holds no object or list.")


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


class MoleculesChecker(TextChecker):
    """Files of many molecules (SDF, MOL2), each checked whole once it has come in.

    `boundary` finds where one molecule's record ends and the next begins; the bytes since the
    last boundary wait (at most MAX_MOLECULE of them) until the next one, or the end.
    """

    boundary: re.Pattern
    MAX_MOLECULE = 64 << 20

    def __init__(self):
        super().__init__()
        self._pending = bytearray()
        self._pending_at = 0  # file offset of the pending record's first byte
        self._searched = 0  # how far into the pending bytes no boundary can start
        self.molecules = 0

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        self._pending += chunk
        start = 0
        for match in self.boundary.finditer(self._pending, self._searched):
            end = self.cut(match)
            if end > start:
                self._record(start, end)
                start = end
        del self._pending[:start]
        self._pending_at += start
        # A boundary cut in two by the chunk border is found whole next time.
        self._searched = max(0, len(self._pending) - 64)
        if len(self._pending) > self.MAX_MOLECULE:
            raise FormatError(f"{self.line(self._pending_at)}: a molecule over 64 MB.")

    def finish(self) -> None:
        super().finish()
        if self._pending.strip():
            self._record(0, len(self._pending))
        if self.molecules == 0:
            raise FormatError(f"This is not {self.what}: it holds no molecule.")

    def _record(self, start: int, end: int) -> None:
        record = bytes(self._pending[start:end])
        if self.is_molecule(record):
            self.molecules += 1
            self.check(record, self._pending_at + start)

    def is_molecule(self, record: bytes) -> bool:
        return True

    def cut(self, match) -> int:
        raise NotImplementedError

    def check(self, record: bytes, at: int) -> None:
        raise NotImplementedError

    def refuse(self, at: int, name: bytes, problem: str):
        label = name.strip().decode("utf-8", "replace")[:60]
        label = f" ('{label}')" if label else ""
        raise FormatError(f"{self.line(at)}: molecule {self.molecules}{label} {problem}.")


class SdfChecker(MoleculesChecker):
    """SDF: molfiles (V2000 or V3000) each ended by a `$$$$` line. Each declares its atoms
    and bonds on its counts line (the fourth), needs at least one atom, has that many atom
    and bond lines, and ends its structure with `M  END`."""

    what = "an SDF file"
    boundary = re.compile(rb"^\$\$\$\$[^\n]*\n", re.MULTILINE)

    def cut(self, match) -> int:
        return match.end()  # the terminator belongs to the molecule before it

    def check(self, record: bytes, at: int) -> None:
        if record.startswith(b"$$$$"):
            self.refuse(at, b"", "is empty")
        lines = record.split(b"\n")
        name = lines[0]
        if len(lines) < 4:
            self.refuse(at, name, "ends before its counts line (the fourth)")
        counts = lines[3]
        if b"V3000" in counts:
            found = _V3000_COUNTS.search(record)
            if found is None:
                self.refuse(at, name, "has no 'M  V30 COUNTS' line")
            atoms, bonds = int(found[1]), int(found[2])
            listed = len(_V3000_ATOM.findall(_v3000_block(record, b"ATOM")))
            listed_bonds = len(_V3000_ATOM.findall(_v3000_block(record, b"BOND")))
        else:
            try:
                atoms, bonds = int(counts[0:3]), int(counts[3:6])
            except ValueError:
                self.refuse(at, name, "has no atom and bond counts on its fourth line")
            body = []
            for line in lines[4:]:
                if line.startswith((b"M  ", b"$$$$")):
                    break
                body.append(line)
            listed = min(len(body), atoms)
            listed_bonds = len(body) - listed
        if atoms == 0:
            self.refuse(at, name, "has no atoms")
        if listed < atoms or listed_bonds < bonds:
            self.refuse(
                at,
                name,
                f"declares {atoms} atoms and {bonds} bonds but lists {listed} and {listed_bonds}",
            )
        if not _MOL_END.search(record):
            self.refuse(at, name, "does not end with 'M  END'")


_V3000_COUNTS = re.compile(rb"^M  V30 COUNTS +(\d+) +(\d+)", re.MULTILINE)
_V3000_ATOM = re.compile(rb"^M  V30 +\d", re.MULTILINE)
_MOL_END = re.compile(rb"^M  END", re.MULTILINE)


def _v3000_block(record: bytes, name: bytes) -> bytes:
    begin = record.find(b"M  V30 BEGIN " + name)
    end = record.find(b"M  V30 END " + name, begin)
    return record[begin:end] if begin != -1 and end != -1 else b""


class Mol2Checker(MoleculesChecker):
    """MOL2: `@<TRIPOS>MOLECULE` sections, each naming its molecule, then its counts (atoms
    first, at least one), followed by an `@<TRIPOS>ATOM` section with that many atoms."""

    what = "a MOL2 file"
    boundary = re.compile(rb"^@<TRIPOS>MOLECULE", re.MULTILINE)

    def cut(self, match) -> int:
        return match.start()  # the marker begins the molecule after it

    def is_molecule(self, record: bytes) -> bool:
        return record.startswith(b"@<TRIPOS>MOLECULE")  # not comments before the first

    def check(self, record: bytes, at: int) -> None:
        lines = record.split(b"\n", 3)
        name = lines[1] if len(lines) > 1 else b""
        counts = lines[2].split() if len(lines) > 2 else []
        if not counts or not counts[0].isdigit():
            self.refuse(at, name, "has no atom count (the line after its name)")
        atoms = int(counts[0])
        if atoms == 0:
            self.refuse(at, name, "has no atoms")
        section = record.find(b"@<TRIPOS>ATOM")
        if section == -1:
            self.refuse(at, name, "has no @<TRIPOS>ATOM section")
        end = record.find(b"@<TRIPOS>", section + 1)
        rows = record[section : end if end != -1 else len(record)].split(b"\n")[1:]
        listed = sum(1 for row in rows if row.strip() and not row.lstrip().startswith(b"#"))
        if listed < atoms:
            self.refuse(at, name, f"declares {atoms} atoms but lists {listed}")


class SmilesChecker(TextChecker):
    """SMILES lines (`.smi`): a SMILES, then optionally white space and a name, one molecule a
    line; blank lines and `#` comments are skipped; at least one. Whether RDKit can read each
    SMILES is for what uses the file to say (a screen names and leaves out one it cannot)."""

    what = "a SMILES file"
    TOKEN = re.compile(rb"^[A-Za-z0-9@+\-\[\]()=#$%/\\.:*~]+$")
    MAX_LINE = 1 << 16

    def __init__(self):
        super().__init__()
        self._pending = b""
        self._offset = 0  # of the pending line's first byte
        self.molecules = 0

    def feed(self, chunk: bytes) -> None:
        super().feed(chunk)
        data = self._pending + chunk
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            self._check(data[start:end], self._offset + start)
            start = end + 1
        self._offset += start
        self._pending = data[start:]
        if len(self._pending) > self.MAX_LINE:
            raise FormatError(f"{self.line(self._offset)}: a line over 64 KB; not {self.what}.")

    def _check(self, line: bytes, at: int) -> None:
        line = line.strip()
        if not line or line.startswith(b"#"):
            return
        smiles = line.split(None, 1)[0]
        if not self.TOKEN.match(smiles):
            shown = smiles.decode("utf-8", "replace")[:40]
            raise FormatError(f"{self.line(at)}: '{shown}' is not a SMILES.")
        self.molecules += 1

    def finish(self) -> None:
        super().finish()
        self._check(self._pending, self._offset)
        if self.molecules == 0:
            raise FormatError(f"This is not {self.what}: it holds no SMILES.")


def checker_for(kind: str):
    if kind in (FASTA, A3M):
        return FastaChecker() if kind == FASTA else A3mChecker()
    if kind in (CSV, TSV):
        return TableChecker("," if kind == CSV else "\t")
    if kind == YAML:
        return YamlChecker()
    if kind == JSON:
        return JsonChecker()
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
        return SdfChecker()
    if kind == MOL2:
        return Mol2Checker()
    if kind == SMI:
        return SmilesChecker()
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
