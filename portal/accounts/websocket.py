"""WebSocket authentication for scripts: `Authorization: Token <key>` (or `Bearer <key>`) on the
handshake.

Browsers authenticate WebSockets with their session cookie (Channels' AuthMiddlewareStack);
a script sends its API token as a header instead. A bad token leaves the connection
anonymous, and the consumer closes it.
"""

from channels.db import database_sync_to_async

from portal.accounts.authentication import KEYWORDS
from portal.accounts.services import token_authenticate


@database_sync_to_async
def _user_for(key: str):
    token = token_authenticate(key)
    return token.user if token is not None else None


class TokenAuthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        keyword, _, key = header.partition(b" ")
        if keyword.lower() in KEYWORDS and key.strip():
            from django.contrib.auth.models import AnonymousUser

            user = await _user_for(key.strip().decode("latin-1"))
            scope = {**scope, "user": user or AnonymousUser()}
        return await self.app(scope, receive, send)
