"""`Idempotency-Key` on every create endpoint: a script that sends the same request again (a
retry after a timeout, a re-run) with the same key gets the first answer, and nothing is created
twice.

The first request with a key claims it (a row, unique per user and key) in the transaction that
does the work, so a second one sent meanwhile waits for the first to commit and then gets its
answer. An answer that is an error is not kept: the row goes with the rolled-back work. The
same key with another method, path or body within 24 hours is a 409; after 24 hours the key is
free again.
"""

import functools
import hashlib
import json
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.response import Response

from portal.accounts.models import IdempotentRequest
from portal.errors import PortalError

HEADER = "Idempotency-Key"
KEPT = timedelta(hours=24)
MAX_KEY = 255


def _fingerprint(request) -> str:
    """SHA-256 of what the request asks: method, path and body (an uploaded file by its
    name, size and digest, which the upload handler computed while it arrived)."""
    data = request.data
    if hasattr(data, "lists"):  # a form: its values, and its files by their digests
        body = {key: values for key, values in data.lists() if key not in request.FILES}
        for key, files in request.FILES.lists():
            body[key] = [[f.name, f.size, getattr(f, "sha256", None)] for f in files]
    else:
        body = data
    text = json.dumps([request.method, request.path, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(post):
    """Decorate a view's `post` so it honours an Idempotency-Key header."""

    @functools.wraps(post)
    def answer(view, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not request.user.is_authenticated:
            return post(view, request, *args, **kwargs)
        if not 0 < len(key) <= MAX_KEY or not key.isprintable():
            raise PortalError(
                f"An {HEADER} is 1 to {MAX_KEY} printable characters.",
                code="idempotency_key_invalid",
            )
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            IdempotentRequest.objects.filter(
                user=request.user, created_at__lt=timezone.now() - KEPT
            ).delete()
            try:
                with transaction.atomic():
                    claim = IdempotentRequest.objects.create(
                        user=request.user, key=key, request_sha256=fingerprint
                    )
            except IntegrityError:
                first = IdempotentRequest.objects.get(user=request.user, key=key)
                if first.request_sha256 != fingerprint:
                    raise PortalError(
                        f"This {HEADER} was used in the last 24 hours for another request.",
                        code="idempotency_key_reused",
                        status_code=409,
                    ) from None
                return Response(first.response, status=first.status)
            response = post(view, request, *args, **kwargs)
            if response.status_code >= 400:
                claim.delete()
            else:
                claim.status, claim.response = response.status_code, response.data
                claim.save(update_fields=["status", "response"])
        return response

    return answer
