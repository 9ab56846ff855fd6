"""examples/gateway.py traced with OpenTelemetry: every request inside the ASGI server's span.

    opentelemetry-instrument --traces_exporter console uvicorn examples.otel_gateway:app --port 8000

Needs `mimo_asgi[otel]`, `opentelemetry-distro` and `opentelemetry-instrumentation-asgi` (see
docs/tracing.md). FastAPI's own instrumentation sits inside the host app, which MimoMiddleware
wraps: a request MiMo answers never reaches it. This wraps the whole gateway, so each request
gets a server span and MiMo's `chat` spans nest under it. The per-message `http send` and
`http receive` spans are left out: a MiMo stream sends thousands of messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from examples import gateway


def build(env: Mapping[str, str] = os.environ) -> Any:
    """The example gateway configured from `env`, inside the ASGI server span."""
    return OpenTelemetryMiddleware(gateway.build(env), exclude_spans=["receive", "send"])


app = OpenTelemetryMiddleware(gateway.app, exclude_spans=["receive", "send"])
