"""Without a tracer provider, or without the OpenTelemetry API, nothing changes: MiMo gets the
same request, and mimo_asgi never loads the API itself. Each case runs in its own process (a
provider, once set, stays for the process); a process with a provider is the control."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import TEST_KEY
from tracing.spans import TRACEPARENT

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys

mode, key, traceparent = sys.argv[1:4]
if mode == "no-api":
    class NoOpenTelemetry:  # as if the `otel` extra were not installed
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"No module named {name!r}")
    sys.meta_path.insert(0, NoOpenTelemetry())
elif mode == "api-loaded":
    import opentelemetry.trace  # the application uses the API, and sets no provider
elif mode == "provider":
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())

import httpx
from mimo_asgi import Account, MimoMiddleware, _tracing
from mimo_asgi.testing import FakeMimo, serve_in_thread

async def host(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

fake = FakeMimo()
with serve_in_thread(fake) as fake_url:
    account = Account("main", key, base_url=fake_url + "/v1", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    with serve_in_thread(MimoMiddleware(host, accounts=[account], api_key=None, seal_key="k")) as url:
        statuses = [
            httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "hi", "stream": True},
                       headers={"traceparent": traceparent}).status_code,
            httpx.post(url + "/v1/chat/completions", json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]},
                       headers={"traceparent": traceparent}).status_code,
        ]
print(json.dumps({"statuses": statuses, "headers": [sorted(r.headers) for r in fake.requests],
                  "traceparents": [r.headers.get("traceparent") for r in fake.requests],
                  "tracer": _tracing._tracer is not None, "api_loaded": "opentelemetry.trace" in sys.modules}))
"""


def run(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, TEST_KEY, TRACEPARENT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def control():
    """A process with a tracer provider: MiMo gets the trace context."""
    seen = run("provider")
    assert seen["statuses"] == [200, 200] and seen["tracer"]
    assert all(t and t.split("-")[1] == TRACEPARENT.split("-")[1] for t in seen["traceparents"])
    return seen


@pytest.mark.parametrize("mode", ["no-api", "api-not-loaded", "api-loaded"])
def test_without_a_provider_or_the_api_nothing_changes(control, mode):
    seen = run(mode)
    assert seen["statuses"] == [200, 200]
    assert seen["traceparents"] == [None, None] and not seen["tracer"]
    # the same headers as with a provider, less the trace context
    assert seen["headers"] == [[h for h in headers if h != "traceparent"] for headers in control["headers"]]
    assert seen["api_loaded"] is (mode == "api-loaded")  # mimo_asgi never imports it on its own
