"""Spans recorded in memory by the OpenTelemetry SDK.

The API takes one tracer provider per process, set once: the first test asking for `traces`
sets it, and spans are kept only while a test asks for them (the rest of the suite then runs
with tracing on, which changes nothing it can see). What holds without a provider, or without
the API, is checked in subprocesses (test_off.py)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tracing.spans import Traces


class _WhileRecording(SimpleSpanProcessor):
    """Exports spans only while a test records them."""

    recording = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.recording:
            super().on_end(span)


@pytest.fixture(scope="session")
def _recorder():
    exporter = InMemorySpanExporter()
    processor = _WhileRecording(exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another tracer provider was set first"
    return exporter, processor


@pytest.fixture
def traces(_recorder):
    exporter, processor = _recorder
    exporter.clear()
    processor.recording = True
    yield Traces(exporter)
    processor.recording = False
    exporter.clear()
