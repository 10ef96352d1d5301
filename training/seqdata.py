"""Sequence datasets: a CSV/TSV with a sequence column (and a label column), or a FASTA whose
headers carry `label=...`. Free of Django: the portal checks a dataset with it at submission, and
the training and scoring programs read their input with it on the node.
"""

import csv
import io
import re

LABEL_IN_HEADER = re.compile(r"(?:^|[\s|;,])label=([^\s|;,]+)")
NOT_A_RESIDUE = re.compile(r"[^A-Z*]")


class DatasetError(ValueError):
    """What is wrong with a dataset, in words for the scientist who uploaded it."""


def _clean(sequence: str, where: str) -> str:
    sequence = "".join(sequence.split()).upper()
    bad = NOT_A_RESIDUE.search(sequence)
    if bad:
        raise DatasetError(f"{where}: '{bad.group()}' in the sequence is not a residue letter.")
    return sequence


def _table(stream, delimiter: str, wanted: list[str]):
    reader = csv.reader(stream, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise DatasetError("The file is empty.")
    header = [name.strip().lstrip("\ufeff") for name in header]
    positions = {}
    for column in wanted:
        if column not in header:
            raise DatasetError(
                f"There is no column '{column}'; the file's columns are: {', '.join(header)}."
            )
        positions[column] = header.index(column)
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        yield number, [row[positions[c]].strip() if positions[c] < len(row) else "" for c in wanted]


def _fasta(stream):
    """(header, sequence) records of a FASTA text stream."""
    header, parts = None, []
    for line in stream:
        line = line.strip()
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(parts)
            header, parts = line[1:].strip(), []
        elif line and header is not None:
            parts.append(line)
    if header is not None:
        yield header, "".join(parts)


def read_labeled(
    stream, kind: str, sequence_column: str = "sequence", label_column: str = "label"
) -> list[tuple[str, str, str]]:
    """(sequence, label, where) for each row or record with both; `where` names it for
    messages ("Row 7", "Record 'P69905'")."""
    rows = []
    if kind == "fasta":
        for number, (header, sequence) in enumerate(_fasta(stream), start=1):
            found = LABEL_IN_HEADER.search(header)
            where = f"Record '{header.split()[0]}'" if header else f"Record {number}"
            if found is not None:
                sequence = _clean(sequence, where)
                if sequence:
                    rows.append((sequence, found.group(1), where))
        return rows
    if kind not in ("csv", "tsv"):
        raise DatasetError(
            f"A {kind.upper()} file holds no labeled sequences; use CSV, TSV or FASTA."
        )
    delimiter = "," if kind == "csv" else "\t"
    for number, (sequence, label) in _table(stream, delimiter, [sequence_column, label_column]):
        if sequence and label:
            rows.append((_clean(sequence, f"Row {number}"), label, f"Row {number}"))
    return rows


def read_sequences(stream, kind: str, sequence_column: str = "sequence") -> list[tuple[str, str]]:
    """(name, sequence) pairs in the file's order: FASTA headers, or row numbers of a table."""
    if kind == "fasta":
        return [
            (header.split()[0] if header else f"record {n}", _clean(seq, f"Record {n}"))
            for n, (header, seq) in enumerate(_fasta(stream), start=1)
        ]
    if kind not in ("csv", "tsv"):
        raise DatasetError(
            f"A {kind.upper()} file holds no sequences to score; use CSV, TSV or FASTA."
        )
    delimiter = "," if kind == "csv" else "\t"
    return [
        (f"row {number}", _clean(sequence, f"Row {number}"))
        for number, (sequence,) in _table(stream, delimiter, [sequence_column])
    ]


def check_labeled(rows: list[tuple[str, str, str]], task: str, min_rows: int) -> dict:
    """Whether these rows can train a model for `task`; returns a summary of them."""
    if not rows:
        raise DatasetError("The dataset has no rows with both a sequence and a label.")
    if len(rows) < min_rows:
        raise DatasetError(
            f"Too few rows: {len(rows)} with a sequence and a label; training needs at least "
            f"{min_rows}."
        )
    labels = [label for _, label, _ in rows]
    if task == "classification":
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise DatasetError(
                f"Every row has the label '{classes[0]}'; classification needs at least two "
                "classes."
            )
        if len(classes) > 1000:
            raise DatasetError(f"{len(classes)} classes is too many; at most 1000.")
        return {"rows": len(rows), "classes": classes}
    values = []
    for _, label, where in rows:
        try:
            value = float(label)
        except ValueError:
            raise DatasetError(
                f"{where}: the label '{label}' is not a number; regression needs numeric labels."
            ) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise DatasetError(f"{where}: the label '{label}' is not a finite number.")
        values.append(value)
    if max(values) == min(values):
        raise DatasetError("Every label is the same number; regression needs labels that vary.")
    return {"rows": len(rows), "min": min(values), "max": max(values)}


def text_stream(binary) -> io.TextIOWrapper:
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")
