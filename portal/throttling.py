"""Rate limits: one budget per signed-in user and one per client address.

Rates come from PORTAL_THROTTLE_USER and PORTAL_THROTTLE_ADDRESS. The counters live in the
default cache: per process when embedded, shared through Redis when REDIS_URL is set.
"""

from rest_framework.throttling import SimpleRateThrottle


class UserThrottle(SimpleRateThrottle):
    """Per signed-in user (anonymous requests are counted per address instead)."""

    scope = "user"

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else None
        ident = f"user-{ident}" if ident is not None else f"addr-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressThrottle(SimpleRateThrottle):
    """Per client address, whoever is signed in: one host cannot flood the portal."""

    scope = "address"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
