"""Prometheus metrics at `/metrics`: what the pool is doing, for a scraper.

Several web processes may answer a scrape, so nothing here counts in memory: each app
registers a collector (`register`, from its AppConfig.ready) that reads its figures from the
database when scraped. The one exception is `portal_http_requests_total`, which no table
records: each process counts the responses it sent, shared between processes through files
when PROMETHEUS_MULTIPROC_DIR is set (prometheus_client's multiprocess mode), else per process.

Scraping is allowed from the addresses in PORTAL_METRICS_ALLOWED (loopback by default), or
with `Authorization: Bearer <PORTAL_METRICS_TOKEN>`; anyone else gets 403.
"""

import hmac
import ipaddress
import os
from inspect import iscoroutinefunction

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseForbidden
from django.utils.decorators import sync_and_async_middleware
from django.views.decorators.http import require_safe
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

_collectors: dict[str, Collector] = {}

# Not in any registry of its own: a scrape adds it (or, in multiprocess mode, the files all
# processes write) to the registry it builds.
http_requests = Counter(
    "portal_http_requests",
    "HTTP responses by status code, since the web process started (or, with "
    "PROMETHEUS_MULTIPROC_DIR, since that directory was emptied)",
    ["status"],
    registry=None,
)

# The event lag: from an event's storing to its push to a WebSocket client, observed by the web
# process that pushes it (jobs/consumers.py), like the HTTP counter.
event_push = Histogram(
    "portal_event_push_seconds",
    "Seconds from a job event's storing to its push to a live client (each client counts)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)


def register(collector: Collector) -> None:
    """Scrape `collector` (its `collect()` yields metric families) with the portal's series.
    Registering one of the same class again replaces it."""
    kind = type(collector)
    _collectors[f"{kind.__module__}.{kind.__qualname__}"] = collector


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def scrape() -> bytes:
    """The exposition text of every registered collector and of the HTTP counter."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in _collectors.values():
        registry.register(collector)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(http_requests)
        registry.register(event_push)
    return generate_latest(registry)


def _client_address(request) -> str:
    # Behind PORTAL_NUM_PROXIES proxies, the address the nearest one saw, as the rate limits
    # take it: Daphne's --proxy-headers puts the *first* X-Forwarded-For entry in
    # REMOTE_ADDR, which the client writes itself, so a forged "127.0.0.1" would pass.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.NUM_PROXIES and forwarded:
        addresses = [a.strip() for a in forwarded.split(",")]
        return addresses[-min(settings.NUM_PROXIES, len(addresses))]
    return request.META.get("REMOTE_ADDR", "")


def _allowed_networks() -> list:
    try:
        return [ipaddress.ip_network(a, strict=False) for a in settings.PORTAL_METRICS_ALLOWED]
    except ValueError as error:
        raise ImproperlyConfigured(f"PORTAL_METRICS_ALLOWED: {error}") from error


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _allowed_networks())


def _token_given(request) -> bool:
    token = settings.PORTAL_METRICS_TOKEN
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    # Constant time: the answer must not tell how much of a guessed token was right.
    return hmac.compare_digest(given.strip().encode(), token.encode())


def may_scrape(request) -> bool:
    return _address_allowed(_client_address(request)) or _token_given(request)


@require_safe
def metrics_view(request):
    if not may_scrape(request):
        return HttpResponseForbidden(
            "Metrics are served to PORTAL_METRICS_ALLOWED addresses or with the bearer token.\n",
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


def _count(response) -> None:
    http_requests.labels(str(response.status_code)).inc()


@sync_and_async_middleware
def count_responses(get_response):
    """Counts every response by status code (`portal_http_requests_total`). First in
    MIDDLEWARE, so redirects and errors of the other middleware are counted too."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            response = await get_response(request)
            _count(response)
            return response

    else:

        def middleware(request):
            response = get_response(request)
            _count(response)
            return response

    return middleware
