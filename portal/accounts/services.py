"""State changes of accounts: API tokens."""

import secrets
from datetime import timedelta

from django.utils import timezone

from portal.accounts.models import ApiToken, hash_token_key
from portal.errors import PortalError

KEY_PREFIX = "spt_"
# A used token's last-used time is written at most this often, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def token_create(*, user, name: str, expires_at=None) -> tuple[ApiToken, str]:
    """Make a token for `user`; returns the token and its key, which is not stored anywhere."""
    name = (name or "").strip()
    if not name:
        raise PortalError("A token needs a name.", code="token_name_required")
    if expires_at is not None and expires_at <= timezone.now():
        raise PortalError("The expiry must lie in the future.", code="token_expiry_past")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=key[:12],
        key_hash=hash_token_key(key),
        expires_at=expires_at,
    )
    return token, key


def token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke a token; a revoked token never authenticates again."""
    ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


def token_authenticate(key: str) -> ApiToken | None:
    """The active token with this key, or None. Records when it was last used."""
    if not key.startswith(KEY_PREFIX):
        return None
    token = (
        ApiToken.objects.active()
        .select_related("user")
        .filter(key_hash=hash_token_key(key))
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        # A script may send many requests a second; one row update a minute is enough.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
