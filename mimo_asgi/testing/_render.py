"""An `Answer` turned into the bytes MiMo would send (pure): chat.completion bodies, chunk
streams and error bodies, in the shapes docs/mimo.md describes ("Answers", "Errors")."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import _json
from ._script import Answer, ToolCall, error_body


GATEWAY_STATUSES = frozenset({401, 429})


@dataclass(frozen=True)
class Turn:
    """What one rendered answer shares across its chunks."""

    id: str
    created: int
    model: str
    thinking: bool
    include_usage: bool


def new_id() -> str:
    """A MiMo completion id: 32 hex, no `chatcmpl-` prefix."""
    return secrets.token_hex(16)


def tokens(text: str) -> int:
    """A rough token count (4 characters a token), 0 only for empty text."""
    return (len(text) + 3) // 4


def arguments_text(call: ToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else _json.dumps_str(call.arguments)


def tool_calls(answer: Answer) -> list[dict[str, Any]]:
    """Full tool call objects with ids and indexes filled in."""
    return [
        {
            "index": call.index if call.index is not None else position,
            "id": call.id or "call_" + secrets.token_hex(12),
            "type": "function",
            "function": {"name": call.name, "arguments": arguments_text(call)},
        }
        for position, call in enumerate(answer.tool_calls)
    ]


def usage(answer: Answer, request: Mapping[str, Any], thinking: bool, raw_size: int) -> dict[str, Any]:
    """OpenAI usage with details; fields the answer leaves None come from the sizes."""
    given = answer.usage
    reasoning = tokens(answer.reasoning) if thinking else 0
    if given is not None and given.reasoning_tokens is not None:
        reasoning = given.reasoning_tokens
    prompt = given.prompt_tokens if given is not None and given.prompt_tokens is not None else max(1, raw_size // 4)
    completion = reasoning + tokens(answer.content) + sum(tokens(arguments_text(c)) + 4 for c in answer.tool_calls)
    if given is not None and given.completion_tokens is not None:
        completion = given.completion_tokens
    body: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": given.cached_tokens if given is not None else 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    if answer.annotations:
        body["web_search_usage"] = {"tool_usage": 1, "page_usage": len(answer.annotations)}
    return body


def completion(answer: Answer, turn: Turn, usage_body: dict[str, Any]) -> dict[str, Any]:
    """The non-stream `chat.completion` body (an in-band error answer is its `error` as is)."""
    if answer.in_band_error:
        return dict(answer.error or {})
    calls = tool_calls(answer)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.content,
        "reasoning_content": answer.reasoning if turn.thinking else None,
        "tool_calls": [{k: v for k, v in call.items() if k != "index"} for call in calls] or None,
    }
    if answer.annotations is not None:
        message["annotations"] = list(answer.annotations)
    return {
        "id": turn.id,
        "object": "chat.completion",
        "created": turn.created,
        "model": turn.model,
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish}],
        "usage": usage_body,
    }


def chunks(answer: Answer, turn: Turn, usage_body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a successful stream, in MiMo's order: role,
    reasoning, content, tool call fragments, finish, then usage when asked for."""
    first: dict[str, Any] = {"role": "assistant", "content": ""}
    if answer.annotations is not None:
        first["annotations"] = list(answer.annotations)  # web search sources ride the first chunk
    yield _chunk(turn, first)
    if turn.thinking:
        for piece in _pieces(answer.reasoning, answer.chunk_size):
            yield _chunk(turn, {"reasoning_content": piece})
    for piece in _pieces(answer.content, answer.chunk_size):
        yield _chunk(turn, {"content": piece})
    for call in tool_calls(answer):
        for fragment in _fragments(call, answer):
            yield _chunk(turn, {"tool_calls": [fragment]})
    yield _chunk(turn, {}, answer.finish)
    if turn.include_usage:
        yield {**_envelope(turn), "choices": [], "usage": usage_body}


def sse_events(answer: Answer, turn: Turn, usage_body: dict[str, Any], prefix: str = "data: ") -> list[bytes]:
    """Every SSE event of a 200 stream as its own bytes, in-band error and `[DONE]` included."""
    head = prefix.encode()
    events = [head + _json.dumps(chunk) + b"\n\n" for chunk in chunks(answer, turn, usage_body)]
    if answer.in_band_error:
        events = events[: answer.error_after] + [head + _json.dumps(answer.error) + b"\n\n"]
    if answer.done:
        events.append(head + b"[DONE]\n\n")
    return events


def error_payload(status: int, body: Mapping[str, Any] | None, stream: bool) -> tuple[bytes, bytes]:
    """(content type, body) of a non-2xx answer. 401 and 429 come from MiMo's gateway as
    indented JSON, also for streams; other errors to stream requests get the model service's
    SSE framing: `data:` without a space and without a closing blank line."""
    body = body if body is not None else error_body(status)
    if status in GATEWAY_STATUSES:
        return b"application/json", json.dumps(body, indent=4, ensure_ascii=False).encode()
    data = _json.dumps(body)
    if stream:
        return b"text/event-stream", b"data:" + data
    return b"application/json", data


def _envelope(turn: Turn) -> dict[str, Any]:
    return {"id": turn.id, "object": "chat.completion.chunk", "created": turn.created, "model": turn.model}


def _chunk(turn: Turn, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {**_envelope(turn), "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _fragments(call: dict[str, Any], answer: Answer) -> Iterator[dict[str, Any]]:
    """First fragment: index, id, type, name (whole arguments only with `whole_tool_calls`);
    then index + argument pieces."""
    arguments = call["function"]["arguments"]
    if answer.whole_tool_calls:
        yield call
        return
    yield {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
    for piece in _pieces(arguments, answer.chunk_size):
        yield {"index": call["index"], "function": {"arguments": piece}}
