"""ASGI entry point: `python manage.py serve` (Daphne) serves this.

HTTP goes to Django (through portal/serving.py's handler, which reads large bodies from
Daphne's file); WebSockets go to the apps' consumers, authenticated by session or API token,
and refused to pages of other sites (portal/websocket_origin.py).
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup(set_prefix=False)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs settings loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from portal.accounts.websocket import TokenAuthMiddleware  # noqa: E402
from portal.live import NoStreamConsumer  # noqa: E402
from portal.serving import PortalASGIHandler  # noqa: E402
from portal.websocket_origin import PortalOriginValidator  # noqa: E402

# The apps' WebSocket routes, named by module like their URLs in portal/urls.py.
WEBSOCKET_ROUTES = ["jobs.routing.websocket_urlpatterns", "nodes.routing.websocket_urlpatterns"]

application = ProtocolTypeRouter(
    {
        "http": PortalASGIHandler(),
        "websocket": PortalOriginValidator(
            AuthMiddlewareStack(
                TokenAuthMiddleware(
                    URLRouter(
                        [
                            *(route for path in WEBSOCKET_ROUTES for route in import_string(path)),
                            re_path("", NoStreamConsumer.as_asgi()),
                        ]
                    )
                )
            )
        ),
    }
)
