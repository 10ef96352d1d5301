"""How a node's agent proves who it is: `Authorization: Node <token>`."""

import logging

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from nodes.models import Node
from nodes.services import node_for_token

log = logging.getLogger("nodes.heartbeat")


class NodeTokenInvalid(exceptions.AuthenticationFailed):
    default_code = "node_token_invalid"
    default_detail = (
        "Unknown node token; send 'Authorization: Node <token>' with the token "
        "`manage.py createnode` printed."
    )


class NodeTokenAuthentication(BaseAuthentication):
    """A request from a node: no user, the node itself as `request.auth`. A wrong or missing
    token is refused (401) and logged with the address it came from."""

    keyword = b"Node"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        token = (
            header[1].decode("latin-1") if len(header) == 2 and header[0] == self.keyword else ""
        )
        node = node_for_token(token)
        if node is None:
            log.warning(
                "heartbeat refused: no node has the token sent from %s",
                request.META.get("REMOTE_ADDR"),
            )
            raise NodeTokenInvalid()
        return AnonymousUser(), node

    def authenticate_header(self, request):
        return "Node"


class IsNode(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, Node)


class NodeTokenScheme(OpenApiAuthenticationExtension):
    target_class = "nodes.authentication.NodeTokenAuthentication"
    name = "nodeAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Node <token>`, the token `manage.py createnode` printed.",
        }
