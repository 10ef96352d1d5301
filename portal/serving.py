"""Serving the portal with Daphne, without holding request bodies in memory.

Daphne (through Twisted) receives a whole request body before the application starts: into
memory up to 100 kB, into a temporary file beyond. Out of the box three things then happen to
a large upload: Twisted parses a multipart body once more with the `email` package, whole and in
memory, only to fill `request.args`, which Daphne never uses (a 200 MB upload took 2 GB); Daphne
reads the file in 8 kB pieces and queues every piece at once, so the body sits in memory whole
before Django sees its first byte; and Django's ASGI handler copies it into a temporary file of
its own.

Here Twisted's form parsing is switched off, the server hands the application Twisted's body
file itself, in the request scope, and the ASGI handler uses that file as the request body. The
bytes are then read exactly once, by the multipart parser and the upload handler that hashes
them (portal/uploads/handlers.py). Under any other ASGI server the standard path is taken.
"""

import io

from asgiref.sync import sync_to_async
from daphne.cli import CommandLineInterface
from daphne.server import Server
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler

BODY_FILE = "portal.request_body_file"


class BodyFileServer(Server):
    def protocol_connected(self, protocol):
        # Daphne builds each request itself, so Twisted's `parsePOSTFormSubmission=False`
        # cannot be passed in; the request calls this right after it is made, before any of
        # its body arrives.
        protocol._parsePOSTFormSubmission = False
        super().protocol_connected(protocol)

    def create_application(self, protocol, scope):
        content = getattr(protocol, "content", None)
        if scope["type"] == "http" and content is not None and not content.closed:
            # Daphne's read loop now finds an empty body and queues one empty message;
            # the application reads the real one from the file.
            protocol.content = io.BytesIO()
            scope = {**scope, "extensions": {**scope.get("extensions", {}), BODY_FILE: content}}
        return super().create_application(protocol, scope)


class PortalDaphne(CommandLineInterface):
    server_class = BodyFileServer


class _Receive:
    """The ASGI receive callable, carrying the request's body file along."""

    def __init__(self, receive, body_file):
        self._receive = receive
        self.body_file = body_file

    async def __call__(self):
        return await self._receive()


class PortalASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        """The middleware and the views are all synchronous: run them as one synchronous
        chain, entered once per request on the thread Django uses for synchronous code.

        Django's own chain under ASGI runs each middleware that can be either in async mode,
        down to the first sync-only one (WhiteNoise), and an async-mode `MiddlewareMixin`
        hops to that thread and back for its `process_request` and `process_response`
        each: about a dozen hops between the event loop and the thread per request, a
        share of the web server's CPU per job that showed in `bench/dispatch.py`."""
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        body_file = scope.get("extensions", {}).get(BODY_FILE)
        if body_file is not None:
            receive = _Receive(receive, body_file)
        await super().__call__(scope, receive, send)

    async def read_body(self, receive):
        body_file = getattr(receive, "body_file", None)
        if body_file is None:
            return await super().read_body(receive)
        message = await receive()  # the empty body message Daphne still sends
        if message["type"] == "http.disconnect":
            body_file.close()
            raise RequestAborted()
        body_file.seek(0)
        return body_file
