"""What the tracing tests read spans with: the recorded spans, and a client's trace context."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import wait_for

CHAT_SPAN = "chat gpt-5.5"
ATTEMPT_SPAN = "mimo_asgi.attempt"
# A client's trace context, as a W3C traceparent: version, trace id, parent span id, flags.
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Traces:
    """The spans that ended during the test."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name == name]

    def wait(self, name: str = CHAT_SPAN, count: int = 1, timeout: float = 10.0) -> list[ReadableSpan]:
        """The `count` spans called `name` (they end just after the client's last byte)."""
        assert wait_for(lambda: len(self.named(name)) >= count, timeout), \
            f"{len(self.named(name))} {name!r} spans of {count}: {[s.name for s in self.all()]}"
        spans = self.named(name)
        assert len(spans) == count, [s.name for s in spans]
        return spans

    def children(self, parent: ReadableSpan, name: str = ATTEMPT_SPAN) -> list[ReadableSpan]:
        """`parent`'s children called `name`, in the order they started."""
        kids = [s for s in self.named(name) if s.parent is not None and s.parent.span_id == parent.context.span_id]
        return sorted(kids, key=lambda s: s.start_time)

    def recorded_text(self) -> str:
        """Everything the spans hold as text: names, attributes, events, links, statuses."""
        return json.dumps([_flat(s) for s in self.all()], default=str)


def _flat(span: ReadableSpan) -> dict[str, Any]:
    return {"name": span.name, "attributes": dict(span.attributes or {}), "status": span.status.description,
            "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
            "links": [dict(link.attributes or {}) for link in span.links]}


def hex_id(value: int, width: int = 16) -> str:
    return format(value, f"0{width}x")


def traceparent_ids(header: str) -> tuple[str, str]:
    """(trace id, parent span id) of a traceparent header."""
    version, trace_id, span_id, flags = header.split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16 and len(flags) == 2, header
    return trace_id, span_id
