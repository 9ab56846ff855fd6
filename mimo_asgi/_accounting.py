"""What one MiMo exchange cost and how it ended: token counts read once, one log line, the
metrics and the `on_usage` hook."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from ._usage import token_counts  # noqa: F401  (re-exported for the handlers)
from .translate.errors import OpenAIError

logger = logging.getLogger("mimo_asgi")

class Metrics(Protocol):
    """Where exchanges are counted (`mimo_asgi.metrics.PrometheusMetrics` is one)."""

    def started(self) -> None: ...
    def ended(self) -> None: ...
    def observe(self, event: UsageEvent, ttfb: float | None) -> None: ...
    def failover(self, error: OpenAIError) -> None: ...
    def cooldown(self, account: str, error: OpenAIError) -> None: ...
    def skipped_line(self) -> None: ...


class UsageEvent:
    """What the `on_usage` hook receives once per MiMo-routed response (cancelled ones too).

    usage: the counts of `TOKEN_KINDS` (`input_tokens`, `cached_tokens`, `output_tokens`,
    `reasoning_tokens`, `total_tokens`)."""

    __slots__ = ("route", "account", "model", "upstream_model", "outcome", "status", "duration", "usage")

    def __init__(self, route: str, account: str, model: str, upstream_model: str, outcome: str,
                 status: int, duration: float, usage: dict[str, int]) -> None:
        self.route, self.account, self.model, self.upstream_model = route, account, model, upstream_model
        self.outcome, self.status, self.duration, self.usage = outcome, status, duration, usage

    def __repr__(self) -> str:
        return (f"UsageEvent(route={self.route!r}, account={self.account!r}, model={self.model!r}, "
                f"outcome={self.outcome!r}, usage={self.usage!r})")


def record(event: UsageEvent, ttfb: float | None, *, metrics: Metrics | None,
           on_usage: Callable[[UsageEvent], Any] | None) -> None:
    """The log line, the metrics and the hook for one finished exchange; never raises."""
    usage = event.usage
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "mimo_asgi route=%s account=%s model=%s upstream_model=%s status=%s outcome=%s ttfb_ms=%s "
            "duration_ms=%.1f input_tokens=%d cached_tokens=%d output_tokens=%d reasoning_tokens=%d",
            event.route, event.account or "-", safe(event.model), safe(event.upstream_model), event.status,
            event.outcome, f"{ttfb * 1000:.1f}" if ttfb is not None else "-", event.duration * 1000,
            usage["input_tokens"], usage["cached_tokens"], usage["output_tokens"], usage["reasoning_tokens"],
        )
    if metrics is not None:
        metrics.observe(event, ttfb)
    if on_usage is not None:
        try:
            on_usage(event)
        except Exception:  # a billing hook must not break the response path
            logger.exception("mimo_asgi: on_usage hook failed")


def safe(text: str) -> str:
    """Client-chosen text made fit for one log line: no control characters, spaces or non-ASCII."""
    return "".join(c if c.isprintable() and c != " " else "_" for c in text[:64]).encode("ascii", "replace").decode()
