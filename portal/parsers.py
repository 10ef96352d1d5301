"""The API's JSON parser: bounded in size and in nesting, and holding only storable text.

The body's size is bounded before parsing: DRF reads it through Django's `request.body`, which
refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (PORTAL_MAX_REQUEST_BYTES) with
RequestDataTooBig, answered 413 by portal/errors.py. Nesting is bounded after: a document
nested thousands of levels deep makes Python's parser give up with RecursionError, and one
just under that limit would make every later recursive walk (validation, error messages,
storage) do so, so anything deeper than MAX_DEPTH is refused as a whole. A string (or key)
with the NUL character or a lone surrogate (`"\\u0000"`, `"\\ud800"`: valid JSON, but
PostgreSQL stores neither in text or jsonb, and a surrogate is not UTF-8) is refused too: no
input means one, and stored it would fail as a server error.
"""

import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Levels of objects and arrays; the deepest real input (a Boltz complex with constraints and
# modifications, as JSON) uses about six.
MAX_DEPTH = 32


def _too_deep() -> ParseError:
    return ParseError(f"The JSON is nested too deeply (more than {MAX_DEPTH} levels).")


UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def check_document(document, limit: int = MAX_DEPTH) -> None:
    """Raise ParseError if objects and arrays nest deeper than `limit`, or a string or key
    holds a character text cannot be stored with (walked without recursion, so the check
    itself cannot overflow the stack)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if isinstance(value, dict):
            for key in value:
                _check_text(key)
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise _too_deep()
        stack.extend(
            (child, depth + 1) for child in children if isinstance(child, dict | list | str)
        )


def _check_text(text: str) -> None:
    found = UNSTORABLE.search(text)
    if found:
        raise ParseError(
            f"The JSON holds the character U+{ord(found.group()):04X} (in {text[:40]!r}), "
            "which no text is stored with: the NUL character and lone surrogates are refused."
        )


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        check_document(document)
        return document
