"""The OpenAPI schema: its description of errors, which every operation can answer, and its
view.

Every error of the API is `{"code", "detail"}` (portal/errors.py); validation errors add
`fields`, rate limits `retry_after`. drf-spectacular documents only what a view declares, so
this hook adds the error answers to every operation, and a script (or a fuzzer checking
answers against the schema) knows their shape.
"""

import threading

from drf_spectacular.views import SpectacularAPIView

ERROR = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable; scripts may branch on it."},
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "fields": {
            "type": "object",
            "additionalProperties": True,
            "description": "Validation errors by field.",
        },
        "retry_after": {"type": "integer", "description": "Seconds to wait (429)."},
    },
    "required": ["code", "detail"],
}

ANSWERS = {
    "400": "The request is invalid; `detail` says which part and why.",
    "401": "Not authenticated.",
    "403": "Your role in the project does not allow this.",
    "404": "Not found, or not in one of your projects.",
    "405": "The method is not allowed here.",
    "409": (
        "It conflicts with what is stored (an upload a job uses cannot be deleted; an "
        "Idempotency-Key was used for another request)."
    ),
    "413": "The body is larger than the portal accepts.",
    "415": "The body is not JSON (uploads: multipart/form-data).",
    "429": "Too many requests; wait `retry_after` seconds.",
}


def document_errors(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ANSWERS.items():
                responses.setdefault(status, {"content": error, "description": description})
    return result


class SchemaView(SpectacularAPIView):
    """drf-spectacular builds the schema with process-wide state: its extensions load their
    target classes on first use, unguarded, and two requests building the first schema at once
    answered 500 (the fuzz found it). Builds take turns."""

    _building = threading.Lock()

    def _get_schema_response(self, request):
        with self._building:
            return super()._get_schema_response(request)
