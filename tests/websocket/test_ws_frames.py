"""Responses over a WebSocket, frame by frame: the handshake, an answer as the SSE path's events
(one JSON text frame each), the warm-up, keep-alive frames, and bad frames answered with an
`error` frame on a connection that stays usable."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from reliability.outcomes import sse_events
from support import TEST_KEY
from websocket.wsclient import BETA, Frames, completed, error_of, output_text

from mimo_asgi import Account, Limits, Timeouts
from mimo_asgi.testing import Answer, ToolCall

MODELS = {"gpt-5*": "mimo-v2.5-pro"}
TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command.",
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
# Values that differ between two answers of the same script: ids, clocks, sealed blobs.
_VARYING = {"id", "item_id", "created_at", "completed_at", "encrypted_content", "call_id"}


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<varies>" if k in _VARYING else _normalised(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _served_after(ws: Frames, fake, text: str = "still here") -> None:
    """The connection still serves: a later frame gets a whole answer."""
    fake.queue(Answer(text=text))
    assert output_text(completed(ws.create(model="gpt-5.5", input="are you there?"))) == text


@pytest.mark.parametrize("headers", [BETA, None], ids=["openai-beta", "no-beta-header"])
def test_handshake_with_or_without_the_beta_header_is_served(gateway, fake, open_ws, headers):
    url, _ = gateway
    ws = open_ws(url, headers=headers)
    fake.queue(Answer(text="hi there"))
    response = completed(ws.create(model="gpt-5.5", input="hi"))
    assert output_text(response) == "hi there"
    assert fake.requests[-1].body["messages"][-1] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize("path", ["/v1/responses", "/responses"])
def test_both_responses_paths_take_a_websocket(gateway, fake, open_ws, path):
    url, _ = gateway
    completed(open_ws(url, path=path).create(model="gpt-5.5", input="hi"))


@pytest.mark.parametrize("answer", [
    Answer(text="The same answer, word by word.", chunk_size=5),
    Answer(tool_calls=[ToolCall("exec_command", {"cmd": "echo tok"}, id="call_1")]),
    Answer(text="cut", finish_reason="length"),
], ids=["text", "tool-call", "length"])
def test_an_answer_is_the_sse_paths_events_one_text_frame_each(gateway, fake, open_ws, answer):
    url, _ = gateway
    body = {"model": "gpt-5.5", "input": "hi", "tools": TOOLS, "reasoning": {"effort": "low"},
            "include": ["reasoning.encrypted_content"]}
    fake.queue(answer, answer)
    sse = httpx.post(url + "/v1/responses", json={**body, "stream": True}, timeout=10)
    assert sse.status_code == 200
    over_http = [json.loads(data) for _, data in sse_events(sse.content)]
    over_ws = open_ws(url).create(**body)  # Frames.recv: every frame is text holding one JSON object
    assert [e["type"] for e in over_ws] == [e["type"] for e in over_http]
    assert _normalised(over_ws) == _normalised(over_http)
    # MiMo was asked the same both times
    assert fake.requests[0].body == fake.requests[1].body


def test_frame_fields_that_are_not_the_body_do_not_reach_mimo(gateway, fake, open_ws):
    url, _ = gateway
    completed(open_ws(url).create(model="gpt-5.5", input="hi", stream_id="lane-1", generate=True))
    sent = fake.requests[-1].body
    assert sent["stream"] is True  # over a WebSocket every answer is a stream
    assert not {"type", "generate", "stream_id"} & set(sent)


def test_prewarm_is_answered_locally_and_chains(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url, headers=BETA)
    warm = ws.create(model="gpt-5.5", generate=False, store=False,
                     input=[{"type": "message", "role": "developer", "content": "You are a test agent."}])
    assert [e["type"] for e in warm] == ["response.created", "response.completed"]
    response = check_two(warm)
    assert response["output"] == [] and response["status"] == "completed"
    assert response["id"].startswith("resp_")
    assert fake.requests == []  # nothing asked of MiMo

    fake.queue(Answer(text="ready"))
    turn = completed(ws.create(model="gpt-5.5", store=False, previous_response_id=response["id"], input="go"))
    assert output_text(turn) == "ready" and turn["id"] != response["id"]
    assert [(m["role"], m["content"]) for m in fake.requests[-1].body["messages"]] == [
        ("system", "You are a test agent."), ("user", "go")]


def check_two(events: list[dict[str, Any]]) -> dict[str, Any]:
    created, done = events
    assert created["response"]["id"] == done["response"]["id"]
    assert (created["sequence_number"], done["sequence_number"]) == (0, 1)
    assert created["response"]["status"] == "in_progress"
    return done["response"]


def test_prewarm_for_a_model_not_served_here_is_answered_locally_too(gateway, fake, open_ws):
    url, _ = gateway
    warm = open_ws(url).create(model="other-model", generate=False, input="hi")
    assert check_two(warm)["output"] == []
    assert fake.requests == []


@pytest.mark.parametrize("stall", [(3, 1.5), (1, 1.5)], ids=["after-content", "before-content"])
def test_a_silent_upstream_gets_keepalive_frames_and_one_terminal(serve_gateway, fake, fake_url, open_ws, stall):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", keepalive_seconds=0.1,
                           timeouts=Timeouts(first_byte=0.3, idle=30))
    ws = open_ws(url)
    fake.queue(Answer(text="slow and steady", reasoning="", chunk_size=4, stall_after=stall))
    response = completed(ws.create(model="gpt-5.5", input="hi"))
    assert output_text(response) == "slow and steady"
    assert ws.keepalives, "no keepalive frame while MiMo was silent"
    assert all(set(k) == {"type", "sequence_number"} and isinstance(k["sequence_number"], int)
               for k in ws.keepalives)
    # exactly one terminal: the next create's answer starts afresh (a stray terminal would come first)
    _served_after(ws, fake)


BAD_FRAMES = {
    "not-json": ("{not json", "invalid_json"),
    "json-not-object": ("[1, 2]", "invalid_event"),
    "unknown-type": (json.dumps({"type": "response.cancel", "model": "gpt-5.5"}), "unsupported_event_type"),
    "no-type": (json.dumps({"model": "gpt-5.5", "input": "hi"}), "unsupported_event_type"),
    "binary": (json.dumps({"type": "response.create", "model": "gpt-5.5", "input": "hi"}).encode(),
               "unsupported_frame"),
    "generate-not-bool": (json.dumps({"type": "response.create", "model": "gpt-5.5", "generate": "no"}), None),
    "no-model": (json.dumps({"type": "response.create", "input": "hi"}), None),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays(gateway, fake, open_ws, name):
    url, _ = gateway
    frame, code = BAD_FRAMES[name]
    ws = open_ws(url)
    ws.send(frame)
    error_of(ws.answer(), 400, code)
    assert fake.requests == []
    _served_after(ws, fake)


def test_a_frame_over_the_body_cap_is_a_413_and_the_connection_stays(serve_gateway, fake, fake_url, open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(max_body_size=4096))
    ws = open_ws(url)
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "x" * 5000})
    frame = error_of(ws.answer(), 413, "request_too_large")
    assert "4096" in frame["error"]["message"]
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "é" * 2100})  # 4200 bytes in UTF-8
    error_of(ws.answer(), 413, "request_too_large")
    assert fake.requests == []
    _served_after(ws, fake)


def test_a_second_create_while_one_runs_is_refused_and_the_first_completes(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(text="the slow one", silence_before=1.0))
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "first"})
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "second"})
    refused = ws.answer()
    frame = error_of(refused, 400, "response_in_progress")
    assert "in progress" in frame["error"]["message"]
    assert output_text(completed(ws.answer())) == "the slow one"
    assert [r.body["messages"][-1]["content"] for r in fake.requests] == ["first"]
    _served_after(ws, fake)
