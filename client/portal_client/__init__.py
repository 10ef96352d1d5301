"""The science portal's Python client: `Portal(url, token)` and the `portal` command."""

from portal_client.client import FINAL_STATES, Portal
from portal_client.errors import DigestMismatch, PortalError

__all__ = ["FINAL_STATES", "DigestMismatch", "Portal", "PortalError"]
