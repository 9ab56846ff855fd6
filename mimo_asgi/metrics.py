"""Prometheus metrics (the `mimo_asgi[metrics]` extra).

Label values come only from configuration and upstream facts (account names, the MiMo model a
request was routed to, outcomes), never from free client text: a wildcard mapping would let
any client mint new series with made-up model names.

    metrics = PrometheusMetrics()
    app = MimoMiddleware(host, accounts=[...], metrics=metrics)
    host.mount("/metrics", metrics.app())   # or any route serving metrics.exposition()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
from prometheus_client.exposition import generate_latest

from ._models import KNOWN_MODELS
from .translate.errors import OpenAIError

if TYPE_CHECKING:
    from ._accounting import UsageEvent

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class PrometheusMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "mimo_asgi") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r, ns = self.registry, namespace
        self.requests = Counter("requests", "MiMo-routed requests by outcome", ["route", "account", "model", "outcome"],
                                namespace=ns, registry=r)
        self.tokens = Counter("tokens", "Tokens by kind (input, cached, output, reasoning)", ["account", "model", "kind"],
                              namespace=ns, registry=r)
        self.ttfb = Histogram("time_to_first_byte_seconds", "Time until the client's first byte", ["route", "account"],
                              namespace=ns, registry=r, buckets=_LATENCY_BUCKETS)
        self.duration = Histogram("request_duration_seconds", "Whole MiMo-routed request", ["route", "account"],
                                  namespace=ns, registry=r, buckets=_LATENCY_BUCKETS)
        self.in_flight = Gauge("in_flight_requests", "MiMo-routed requests being served", namespace=ns, registry=r)
        self.leases = Gauge("held_leases", "Account leases held by the pool", namespace=ns, registry=r)
        self.failovers = Counter("failovers", "Requests moved to another account before the first byte", ["reason"],
                                 namespace=ns, registry=r)
        self.cooldowns = Counter("cooldowns", "Accounts put in cooldown or disabled", ["account", "reason"],
                                 namespace=ns, registry=r)
        self.skipped_lines = Counter("skipped_upstream_lines", "MiMo stream data lines that were not JSON, skipped",
                                     namespace=ns, registry=r)

        self.models = set(KNOWN_MODELS)

    def track_pool(self, pool: Any) -> None:
        """Report the pool's held leases at scrape time."""
        self.leases.set_function(lambda: pool.in_flight())

    def observe(self, event: UsageEvent, ttfb: float | None) -> None:
        # the env route takes any `mimo-*` name from the client: only known ids become labels
        account = event.account or "-"
        model = event.upstream_model if event.upstream_model in self.models else "other"
        self.requests.labels(event.route, account, model, event.outcome or "completed").inc()
        for kind in ("input", "cached", "output", "reasoning"):
            value = event.usage.get(f"{kind}_tokens", 0)
            if value:
                self.tokens.labels(account, model, kind).inc(value)
        if ttfb is not None:
            self.ttfb.labels(event.route, account).observe(ttfb)
        self.duration.labels(event.route, account).observe(event.duration)

    def started(self) -> None:
        self.in_flight.inc()

    def ended(self) -> None:
        self.in_flight.dec()

    def skipped_line(self) -> None:
        self.skipped_lines.inc()

    def failover(self, error: OpenAIError) -> None:
        self.failovers.labels(failure_reason(error)).inc()

    def cooldown(self, account: str, error: OpenAIError) -> None:
        self.cooldowns.labels(account, failure_reason(error)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def app(self) -> Any:
        """An ASGI app serving the exposition format."""
        return make_asgi_app(self.registry)


def failure_reason(error: OpenAIError) -> str:
    """A bounded label for why an attempt failed, from MiMo's own status when it answered (the
    client sees MiMo's 401/403 as a 502 and its 402 as a 429)."""
    status = error.upstream_status if error.upstream_status is not None else error.status
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "quota"
    if error.code == "upstream_timeout":
        return "timeout"
    if error.code == "upstream_unreachable":
        return "unreachable"
    return "upstream_error"
