from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.accounts.services import token_authenticate

# The scheme names a personal API token goes by: the portal's own, and OAuth's, which many
# HTTP clients send by default.
KEYWORDS = (b"token", b"bearer")


class TokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`) with a personal API token."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                f"Send the header as 'Authorization: {header[0].decode('latin-1')} <key>'.",
                code="authentication_failed",
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "The token holds characters a key never has.", code="authentication_failed"
            ) from None
        token = token_authenticate(key)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "The token is unknown, revoked or expired.", code="authentication_failed"
            )
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "portal.accounts.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>` (or `Bearer <key>`), a personal API token.",
        }
