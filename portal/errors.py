"""Domain errors and the one place that turns any API error into `{"code", "detail"}`.

Codes are stable: scripts may branch on them. A domain error is raised as
`PortalError("what went wrong, in words a scientist understands", code="upload_invalid")`.
"""

import logging

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import JsonResponse
from rest_framework import exceptions, status

log = logging.getLogger(__name__)


class PortalError(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "The request is invalid."

    def __init__(self, detail=None, *, code=None, status_code=None):
        if status_code is not None:
            self.status_code = status_code
        super().__init__(detail, code)


class ParamsInvalid(exceptions.ValidationError):
    """A job's parameters, field by field (`fields` names each)."""

    default_code = "params_invalid"


# DRF's own exceptions, named for scripts.
_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "parse_error",
}


def flatten(detail, prefix=""):
    """Yield `field: message` lines from DRF's nested validation detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            yield from flatten(value, f"{prefix}.{name}" if prefix and name else name or prefix)
    elif isinstance(detail, list):
        for item in detail:
            yield from flatten(item, prefix)
    else:
        yield f"{prefix}: {detail}" if prefix else str(detail)


def request_refused(exc: SuspiciousOperation) -> PortalError:
    """What Django raises about a request's body, as an answer a client can act on."""
    if isinstance(exc, RequestDataTooBig):
        return PortalError(
            f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} "
            "bytes this portal reads as JSON or form data (PORTAL_MAX_REQUEST_BYTES); send "
            "files to /api/v1/uploads/.",
            code="request_too_large",
            status_code=413,
        )
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return PortalError("The request holds too many fields or files.", code="too_many_fields")
    return PortalError("The request could not be understood.", code="bad_request")


def api_exception_handler(exc, context):
    # Imported here: rest_framework.views loads the authentication classes, which use this
    # module's errors.
    from rest_framework.views import exception_handler

    if isinstance(exc, SuspiciousOperation):
        exc = request_refused(exc)
    response = exception_handler(exc, context)
    if response is None:
        # Anything unexpected: log it with its traceback, tell the client only that it failed.
        log.exception("unhandled error in %s", context.get("view"))
        return JsonResponse(
            {"code": "server_error", "detail": "The server failed to answer; this is logged."},
            status=500,
        )
    if isinstance(exc, exceptions.ValidationError):
        body = {
            "code": "invalid" if type(exc) is exceptions.ValidationError else exc.default_code,
            "detail": "; ".join(flatten(exc.detail)) or "The request is invalid.",
            "fields": exc.detail if isinstance(exc.detail, dict) else {},
        }
    else:
        # DRF's own classes by their names here; a subclass of ours carries its own code.
        code = _CODES.get(type(exc))
        if code is None:
            codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
            code = codes if isinstance(codes, str) else "error"
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        body = {"code": code, "detail": str(detail)}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            body["retry_after"] = int(exc.wait)
    response.data = body
    return response


def json_error(status_code: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"code": code, "detail": detail}, status=status_code)
