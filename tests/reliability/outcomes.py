"""What a client may receive from the gateway, checked: exactly one terminal, or an OpenAI error.

`check_outcome(route, stream, status, body)` raises AssertionError naming the broken rule and
returns what the client got: "completed", "incomplete" or "failed" for Responses, "finished"
or "failed" for Chat streams, "ok" for a non-stream answer, or "http <status>" for an
OpenAI-shaped error that came before any stream.
"""

from __future__ import annotations

import json
from typing import Any

from mimo_asgi._sse import SSEDecoder
from unit.invariants import check_responses_stream

CHAT = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "gpt-5.5", "input": "hi"}
PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses"}
BODIES = {"chat": CHAT, "responses": RESPONSES}


def request_body(route: str, stream: bool, text: str = "hi", **extra: Any) -> dict[str, Any]:
    if route == "chat":
        return {**CHAT, "messages": [{"role": "user", "content": text}], "stream": stream, **extra}
    return {**RESPONSES, "input": text, "stream": stream, **extra}


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """(event name, data) of every SSE event, a last unterminated one included."""
    decoder = SSEDecoder()
    return [(e.event, e.data) for e in decoder.feed(body) + decoder.close()]


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_openai_error(status: int, body: bytes) -> str:
    _require(400 <= status < 600, f"status {status} is not an error")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise AssertionError(f"error body is not JSON: {body[:200]!r}") from None
    _require(isinstance(parsed, dict) and set(parsed) == {"error"}, f"error body is not OpenAI-shaped: {parsed!r}")
    error = parsed["error"]
    _require(isinstance(error, dict) and set(error) == {"message", "type", "param", "code"},
             f"error object is not OpenAI-shaped: {error!r}")
    _require(isinstance(error["message"], str) and error["message"], "error without a message")
    _require(isinstance(error["type"], str) and error["type"], "error without a type")
    return f"http {status}"


def check_responses_sse(body: bytes, model: str = "gpt-5.5") -> str:
    events = []
    for name, data in sse_events(body):
        _require(data != "[DONE]", "a Responses stream carries [DONE]")
        try:
            event = json.loads(data)
        except ValueError:
            raise AssertionError(f"Responses event data is not JSON: {data[:200]!r}") from None
        _require(name == event.get("type"), f"event name {name!r} differs from its type {event.get('type')!r}")
        events.append(event)
    response = check_responses_stream(events)
    _require(response.get("model") == model, f"terminal response names model {response.get('model')!r}")
    return response["status"]


def check_chat_sse(body: bytes, model: str = "gpt-5.5") -> str:
    data = [d for _, d in sse_events(body)]
    _require(data, "an empty chat stream")
    _require(data[-1] == "[DONE]", f"the chat stream does not end with [DONE]: {data[-1][:200]!r}")
    _require(data.count("[DONE]") == 1, f"{data.count('[DONE]')} [DONE] lines")
    chunks = []
    for d in data[:-1]:
        try:
            chunks.append(json.loads(d))
        except ValueError:
            raise AssertionError(f"chat chunk is not JSON: {d[:200]!r}") from None
    errors = [i for i, c in enumerate(chunks) if "error" in c]
    if errors:
        _require(errors == [len(chunks) - 1], f"error chunks at {errors} of {len(chunks)}: not one, last")
        check_openai_error(500, json.dumps(chunks[-1]).encode())
        outcome = "failed"
    else:
        finishes = [c for c in chunks for choice in c.get("choices") or () if choice.get("finish_reason")]
        _require(len(finishes) == 1, f"{len(finishes)} chunks with a finish_reason and no error chunk")
        outcome = "finished"
    for c in chunks[: len(chunks) - len(errors)]:
        _require(c.get("object") == "chat.completion.chunk", f"not a chunk: {c!r}"[:300])
        _require(c.get("model") == model, f"chunk names model {c.get('model')!r}")
    return outcome


def check_outcome(route: str, stream: bool, status: int, body: bytes, content_type: str = "") -> str:
    """Exactly one terminal (see the module doc), whatever the upstream did."""
    if status != 200:
        return check_openai_error(status, body)
    if stream:
        _require(content_type.startswith("text/event-stream"), f"a 200 stream with content type {content_type!r}")
        return check_responses_sse(body) if route == "responses" else check_chat_sse(body)
    parsed = json.loads(body)
    if route == "responses":
        _require(parsed.get("object") == "response", f"not a response object: {str(parsed)[:300]}")
        _require(parsed.get("status") in ("completed", "incomplete"),
                 f"a 200 response with status {parsed.get('status')!r}")
        _require(parsed.get("model") == "gpt-5.5", "response names another model")
        return parsed["status"]
    _require(parsed.get("object") == "chat.completion", f"not a chat.completion: {str(parsed)[:300]}")
    _require(parsed.get("model") == "gpt-5.5", "completion names another model")
    _require(parsed["choices"] and parsed["choices"][0].get("finish_reason"), "completion without a finish_reason")
    return "ok"


def is_failure(outcome: str) -> bool:
    return outcome == "failed" or outcome.startswith("http ")
