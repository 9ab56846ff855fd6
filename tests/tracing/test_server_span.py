"""Under an instrumented ASGI server the MiMo span nests under the server's span (which continued
the client's trace); a WebSocket frame's own trace context wins and links the connection's span."""

from __future__ import annotations

import json

import httpx
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.trace import SpanKind
from support import TEST_KEY, host_app
from tracing.spans import CHAT_SPAN, PARENT_ID, TRACE_ID, TRACEPARENT, hex_id
from websockets.sync.client import connect

from mimo_asgi import Account, MimoMiddleware
from mimo_asgi.testing import serve_in_thread

FRAME_TRACE, FRAME_PARENT = "55555555555555555555555555555555", "6666666666666666"


def _server(fake_url: str):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    gateway = MimoMiddleware(host_app(), accounts=[account], api_key=None, seal_key="k")
    return serve_in_thread(OpenTelemetryMiddleware(gateway, exclude_spans=["receive", "send"]))


def test_an_http_exchange_nests_under_the_server_span(fake, fake_url, traces):
    with _server(fake_url) as url:
        response = httpx.post(url + "/v1/chat/completions", headers={"traceparent": TRACEPARENT},
                              json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
        [span] = traces.wait()
    [server] = [s for s in traces.all() if s.kind is SpanKind.SERVER]
    assert hex_id(server.parent.span_id) == PARENT_ID and hex_id(server.context.trace_id, 32) == TRACE_ID
    assert span.parent.span_id == server.context.span_id and not span.parent.is_remote
    assert span.context.trace_id == server.context.trace_id


def test_a_frame_trace_context_wins_over_the_connection_span_and_links_it(fake, fake_url, traces):
    with _server(fake_url) as url:
        with connect("ws" + url.removeprefix("http") + "/v1/responses", open_timeout=10,
                     additional_headers={"traceparent": TRACEPARENT}) as ws:
            for metadata in ({"traceparent": f"00-{FRAME_TRACE}-{FRAME_PARENT}-01"}, {}):
                ws.send(json.dumps({"type": "response.create", "model": "gpt-5.5", "input": "hi", "store": False,
                                    "client_metadata": metadata}))
                while json.loads(ws.recv(timeout=30))["type"] != "response.completed":
                    pass
        framed, plain = sorted(traces.wait(CHAT_SPAN, 2), key=lambda s: s.start_time)
    [connection] = [s for s in traces.all() if s.kind is SpanKind.SERVER]
    assert hex_id(framed.context.trace_id, 32) == FRAME_TRACE and hex_id(framed.parent.span_id) == FRAME_PARENT
    assert [link.context.span_id for link in framed.links] == [connection.context.span_id]
    # without one, the frame's span is the connection's child, in the handshake's trace
    assert plain.parent.span_id == connection.context.span_id and hex_id(plain.context.trace_id, 32) == TRACE_ID
    assert plain.links == ()
