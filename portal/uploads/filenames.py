"""Uploaded file names, made harmless.

A name is kept for people (listings, downloads, a job's scratch directory), never trusted: it
loses any directory part (`../../etc/passwd` → `passwd`), control characters, characters that
are special on some filesystem, and leading dots; what is left is at most 200 characters.
"""

import re
import unicodedata

_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')


def safe_filename(name: str, default: str = "upload") -> str:
    name = unicodedata.normalize("NFC", name or "")
    # Both separators: a Windows client sends C:\Users\me\seqs.fasta.
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 16 else name[:200]
    return name or default
