"""The host app behind the WebSocket: frames for models MiMo does not serve are bridged to it as
an ordinary `POST` (its SSE, JSON or error answer coming back as frames); `websocket="host"`
hands it the socket untouched; `websocket="off"` and the connection cap refuse the upgrade
with 426."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from support import TEST_KEY, wait_for
from websocket.wsclient import BETA, completed, error_of, handshake_status, output_text, ws_url
from websockets.sync.client import connect

from mimo_asgi import Account, Limits
from mimo_asgi.testing import Answer

MODELS = {"gpt-5*": "mimo-v2.5-pro"}
CALLER = {"Authorization": "Bearer caller-key-123"}


def _message(text: str, n: int) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_host_{n}", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def _response(n: int, model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": f"resp_host_{n}", "object": "response", "created_at": 1_700_000_000, "status": status,
            "model": model, "output": output, "usage": None}


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


class Host:
    """A host app that speaks Responses over HTTP only; records what it is asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sockets: list[dict[str, Any]] = []

    async def responses(self, request: Request):
        raw = await request.body()
        body = json.loads(raw)
        n = len(self.requests) + 1
        self.requests.append({"method": request.method, "path": request.url.path, "body": body, "length": len(raw),
                              "headers": dict(request.headers)})
        model = body["model"]
        text = f"host answer {n}"
        if model == "host-sse":
            item = _message(text, n)
            events = [{"type": "response.created", "response": _response(n, model, "in_progress", [])},
                      {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
                      {"type": "response.output_text.delta", "output_index": 0, "item_id": item["id"],
                       "content_index": 0, "delta": text},
                      {"type": "response.output_item.done", "output_index": 0, "item": item},
                      {"type": "response.completed", "response": _response(n, model, "completed", [item])}]
            events = [{**e, "sequence_number": i} for i, e in enumerate(events)]
            tail = b"data: [DONE]\n\n" + _sse([{"type": "response.completed", "sequence_number": 99,
                                                "response": _response(n, model, "completed", [])}])

            async def stream():
                for event in events:
                    yield _sse([event])
                yield tail  # after the terminal: never relayed

            return StreamingResponse(stream(), media_type="text/event-stream")
        if model == "host-json":
            return JSONResponse(_response(n, model, "completed", [_message(text, n)]))
        if model == "host-429":
            return JSONResponse({"error": {"message": "Host says slow down.", "type": "rate_limit_error",
                                           "param": None, "code": "rate_limit_exceeded"}},
                                status_code=429, headers={"retry-after": "3"})
        if model == "host-500":
            return PlainTextResponse("boom", status_code=500)
        if model == "host-empty":
            return StreamingResponse(iter([b": nothing to say\n\n"]), media_type="text/event-stream")
        if model == "host-truncated":
            async def cut():
                yield _sse([{"type": "response.created", "sequence_number": 0,
                             "response": _response(n, model, "in_progress", [])}])

            return StreamingResponse(cut(), media_type="text/event-stream")
        return JSONResponse({"error": {"message": f"No model {model!r} here.", "type": "invalid_request_error",
                                       "param": "model", "code": "model_not_found"}}, status_code=404)

    async def echo(self, websocket: WebSocket) -> None:
        self.sockets.append(dict(websocket.headers))
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(json.dumps({"type": "echo", "received": json.loads(text)}))
        await websocket.close(1000)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/responses", self.responses, methods=["POST"]),
                                 Route("/responses", self.responses, methods=["POST"]),
                                 WebSocketRoute("/v1/responses", self.echo), WebSocketRoute("/ws", self.echo)])


@pytest.fixture
def host():
    return Host()


@pytest.fixture
def bridged(serve_with_host, host, fake_url):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_with_host(host.app(), accounts=[account], api_key=None, seal_key="k")
    return url, mw


@pytest.mark.parametrize("path", ["/v1/responses", "/responses"])
def test_a_frame_for_another_model_is_posted_to_the_host_as_http(bridged, host, fake, open_ws, path):
    url, _ = bridged
    ws = open_ws(url, path=path, headers={**CALLER, **BETA})
    events = ws.create(model="host-sse", input="hello host", instructions="Be nice.", store=False)
    assert [e["type"] for e in events] == ["response.created", "response.output_item.added",
                                           "response.output_text.delta", "response.output_item.done",
                                           "response.completed"]  # relayed event by event, nothing after
    assert output_text(events[-1]["response"]) == "host answer 1"
    [asked] = host.requests
    assert (asked["method"], asked["path"]) == ("POST", path)
    assert asked["body"]["stream"] is True and asked["body"]["instructions"] == "Be nice."
    assert asked["body"]["input"] == "hello host"
    assert "type" not in asked["body"] and "generate" not in asked["body"]
    headers = asked["headers"]
    assert headers["authorization"] == CALLER["Authorization"]  # the handshake's, for the host to check
    assert headers["openai-beta"] == BETA["OpenAI-Beta"]
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == asked["length"]
    assert not {"upgrade", "sec-websocket-key", "sec-websocket-version"} & set(headers)
    assert fake.requests == []


def test_a_chained_frame_to_the_host_gets_the_whole_input(bridged, host, open_ws):
    url, _ = bridged
    ws = open_ws(url, headers=CALLER)
    first = ws.create(model="host-sse", input="one", store=False)[-1]["response"]
    second = ws.create(model="host-sse", input="two", store=False, previous_response_id=first["id"])
    assert second[-1]["type"] == "response.completed"
    body = host.requests[-1]["body"]
    assert "previous_response_id" not in body or body["previous_response_id"] is None
    assert [(i.get("role"), _text_of(i)) for i in body["input"]] == [
        ("user", "one"), ("assistant", "host answer 1"), ("user", "two")]


def _text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


def test_a_json_answer_from_the_host_becomes_events(bridged, host, open_ws):
    url, _ = bridged
    ws = open_ws(url, headers=CALLER)
    events = ws.create(model="host-json", input="one", store=False)
    assert [e["type"] for e in events] == ["response.created", "response.output_item.done", "response.completed"]
    assert [e["sequence_number"] for e in events] == [0, 1, 2]
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert events[1]["item"]["content"][0]["text"] == "host answer 1"
    assert events[2]["response"]["id"] == "resp_host_1"
    ws.create(model="host-json", input="two", store=False, previous_response_id="resp_host_1")
    assert [_text_of(i) for i in host.requests[-1]["body"]["input"]] == ["one", "host answer 1", "two"]


@pytest.mark.parametrize("model,status,headers", [("host-429", 429, {"retry-after": "3"}), ("host-500", 500, {}),
                                                  ("host-unknown", 404, {})])
def test_a_non_2xx_host_answer_is_an_error_frame(bridged, host, fake, open_ws, model, status, headers):
    url, _ = bridged
    ws = open_ws(url, headers=CALLER)
    frame = error_of(ws.create(model=model, input="hi"), status)
    assert frame["headers"] == headers
    if model == "host-429":
        assert frame["error"]["message"] == "Host says slow down." and frame["error"]["code"] == "rate_limit_exceeded"
    if model == "host-500":
        assert "boom" in frame["error"]["message"]
    fake.queue(Answer(text="mimo again", reasoning=""))
    assert output_text(completed(ws.create(model="gpt-5.5", input="hi"))) == "mimo again"


def test_a_host_stream_with_no_event_is_an_error_frame(bridged, host, fake, open_ws):
    url, _ = bridged
    ws = open_ws(url)
    error_of(ws.create(model="host-empty", input="hi"), 502, "stream_truncated")
    fake.queue(Answer(text="served", reasoning=""))
    completed(ws.create(model="gpt-5.5", input="hi"))


def test_a_host_stream_cut_after_its_start_ends_with_response_failed(bridged, host, fake, open_ws):
    """After the start a failure is `response.failed` (an `error` frame is only for before it)."""
    url, _ = bridged
    ws = open_ws(url)
    events = ws.create(model="host-truncated", input="hi", store=False)
    assert [e["type"] for e in events] == ["response.created", "response.failed"]
    failed = events[-1]
    assert failed["sequence_number"] == 1
    assert failed["response"]["id"] == events[0]["response"]["id"]
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["code"] == "stream_truncated"
    # a failed response is not chained from (nor stored)
    error_of(ws.create(model="gpt-5.5", input="x", previous_response_id=failed["response"]["id"]), 404,
             "previous_response_not_found")
    fake.queue(Answer(text="served", reasoning=""))
    completed(ws.create(model="gpt-5.5", input="hi"))


def test_each_frames_model_decides_and_the_conversation_crosses_over(bridged, host, fake, open_ws):
    url, _ = bridged
    ws = open_ws(url, headers=CALLER)
    fake.queue(Answer(text="from mimo", reasoning=""), Answer(text="mimo again", reasoning=""))
    first = completed(ws.create(model="gpt-5.5", input="to mimo", store=False))
    second = ws.create(model="host-json", input="to the host", store=False, previous_response_id=first["id"])
    assert [_text_of(i) for i in host.requests[-1]["body"]["input"]] == ["to mimo", "from mimo", "to the host"]
    completed(ws.create(model="gpt-5.5", input="back to mimo", store=False,
                        previous_response_id=second[-1]["response"]["id"]))
    assert [(m["role"], m["content"]) for m in fake.requests[-1].body["messages"]] == [
        ("user", "to mimo"), ("assistant", "from mimo"), ("user", "to the host"), ("assistant", "host answer 1"),
        ("user", "back to mimo")]


def test_websocket_host_hands_the_socket_to_the_host_untouched(serve_with_host, host, fake, fake_url):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_with_host(host.app(), accounts=[account], api_key=None, seal_key="k", websocket="host")
    frame = {"type": "response.create", "model": "gpt-5.5", "input": "hi"}
    with connect(ws_url(url), additional_headers=CALLER, open_timeout=10) as ws:
        ws.send(json.dumps(frame))
        assert json.loads(ws.recv(timeout=10)) == {"type": "echo", "received": frame}
    assert host.sockets[0]["authorization"] == CALLER["Authorization"]
    assert fake.requests == []


def test_a_websocket_on_another_path_reaches_the_host(bridged, host):
    url, _ = bridged
    with connect(ws_url(url, "/ws"), open_timeout=10) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-5.5"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "echo"


def test_websocket_off_refuses_the_upgrade_with_426(serve_with_host, host, fake_url):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_with_host(host.app(), accounts=[account], api_key=None, seal_key="k", websocket="off")
    assert handshake_status(url, headers=BETA) == 426
    assert host.sockets == []


def test_the_connection_cap_refuses_one_more_with_426(serve_with_host, host, fake, fake_url, open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_with_host(host.app(), accounts=[account], api_key=None, seal_key="k",
                              limits=Limits(max_websockets=2))
    first, second = open_ws(url), open_ws(url)
    assert handshake_status(url) == 426
    completed(first.create(model="gpt-5.5", input="still served"))
    second.ws.close()
    assert wait_for(lambda: mw.runtime.websockets == 1, 5)
    completed(open_ws(url).create(model="gpt-5.5", input="a place again"))


def test_a_host_that_keeps_its_stream_open_after_the_terminal_does_not_hold_the_next_frame(
        serve_gateway, fake, fake_url, open_ws):
    """The terminal ends the host's part: what it would still send is not waited for."""
    async def lingering(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        events = [{"type": "response.created", "sequence_number": 0,
                   "response": _response(1, "host-sse", "in_progress", [])},
                  {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0,
                   "item": {**_message("done", 1), "status": "in_progress", "content": []}},
                  {"type": "response.output_item.done", "sequence_number": 2, "output_index": 0,
                   "item": _message("done", 1)},
                  {"type": "response.completed", "sequence_number": 3,
                   "response": _response(1, "host-sse", "completed", [_message("done", 1)])}]
        await send({"type": "http.response.body", "body": _sse(events), "more_body": True})
        await anyio.sleep_forever()  # never ends its answer

    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_gateway(accounts=[account], api_key=None, seal_key="k")
    mw.app = mw.runtime.app = lingering
    ws = open_ws(url)
    first = ws.create(model="host-sse", input="hi")
    assert first[-1]["type"] == "response.completed" and output_text(first[-1]["response"]) == "done"
    fake.queue(Answer(text="next", reasoning=""))
    assert output_text(completed(ws.create(model="gpt-5.5", input="next"))) == "next"
