"""Which pages may open a WebSocket to the portal.

A browser always says where the page that opens a WebSocket comes from (`Origin`); a page of
another site must not ride on a signed-in user's session cookie, so that origin must be one of
ALLOWED_HOSTS. Scripts send no Origin and authenticate with their token; they are let through.
"""

from channels.security.websocket import OriginValidator
from django.conf import settings


class PortalOriginValidator(OriginValidator):
    def __init__(self, application):
        hosts = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, hosts)

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True  # not a browser
        return super().valid_origin(parsed_origin)
