"""The API's JSON parser: bounded in size and in nesting.

The body's size is bounded before parsing: DRF reads it through Django's `request.body`, which
refuses more than DATA_UPLOAD_MAX_MEMORY_SIZE (PORTAL_MAX_REQUEST_BYTES) with
RequestDataTooBig, answered 413 by portal/errors.py. Nesting is bounded after: a document
nested thousands of levels deep makes Python's parser give up with RecursionError, and one
just under that limit would make every later recursive walk (validation, error messages,
storage) do so, so anything deeper than MAX_DEPTH is refused as a whole.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Levels of objects and arrays; the deepest real input (a Boltz complex with constraints and
# modifications, as JSON) uses about six.
MAX_DEPTH = 32


def _too_deep() -> ParseError:
    return ParseError(f"The JSON is nested too deeply (more than {MAX_DEPTH} levels).")


def check_depth(document, limit: int = MAX_DEPTH) -> None:
    """Raise ParseError if objects and arrays nest deeper than `limit` (walked without
    recursion, so the check itself cannot overflow the stack)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            document = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        check_depth(document)
        return document
