"""Error answers outside DRF views: JSON under /api/, pages elsewhere."""

from django.shortcuts import render

from portal.errors import json_error


def _answer(request, status, code, detail):
    if request.path.startswith("/api/"):
        return json_error(status, code, detail)
    return render(request, "error.html", {"status": status, "detail": detail}, status=status)


def bad_request(request, exception=None):
    return _answer(request, 400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    detail = str(exception) if exception and str(exception) else "You may not do this."
    return _answer(request, 403, "permission_denied", detail)


def page_not_found(request, exception=None):
    return _answer(request, 404, "not_found", "There is nothing at this address.")


def server_error(request):
    return _answer(request, 500, "server_error", "The server failed to answer; this is logged.")


def csrf_failure(request, reason=""):
    return _answer(
        request,
        403,
        "csrf_failed",
        "The form was stale or came from another site; reload the page and try again.",
    )
