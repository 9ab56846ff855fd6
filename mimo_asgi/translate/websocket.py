"""Responses over a WebSocket, the protocol's pure half: client frames in, server frames out, and
what a connection keeps to chain one response to the next.

The client sends `response.create` text frames, each a Responses body (plus `type`, and
`generate: false` for a warm-up that makes no output); the server answers with the Responses
stream events, one JSON text frame each, or one `error` frame:
`{"type": "error", "status": N, "error": {message, type, param, code}, "headers": {...}}`.
A frame may carry `previous_response_id` with only the new input items: the connection rebuilds
the whole conversation from the last request it served and that request's output.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import _json
from . import _response_object as ro
from .errors import OpenAIError, invalid_request
from .responses_request import Continuation

CREATE = "response.create"
TERMINALS = frozenset({"response.completed", "response.failed", "response.incomplete"})
_NOT_BODY = ("type", "generate", "stream_id")  # frame members that are not Responses body fields


def parse_frame(text: str, max_size: int) -> tuple[dict[str, Any], bool]:
    """A `response.create` frame as (the Responses body, whether to generate). The body always
    streams: over a WebSocket every answer is a stream of events. Raises OpenAIError (400, or
    413 over `max_size` bytes) naming the problem."""
    if len(text) > max_size or (len(text) * 4 > max_size and len(text.encode()) > max_size):
        raise OpenAIError(413, f"The frame exceeds the {max_size} byte limit.", code="request_too_large")
    try:
        frame = _json.loads(text)
    except _json.JSONDecodeError:
        raise invalid_request("The frame is not JSON; send a response.create event as a JSON text frame.",
                              code="invalid_json") from None
    if not isinstance(frame, dict):
        raise invalid_request("The frame must be a JSON object with a 'type'.", code="invalid_event")
    kind = frame.get("type")
    if kind != CREATE:
        shown = str(kind)[:64] if isinstance(kind, str) else repr(kind)[:64]
        raise invalid_request(f"Unsupported event type {shown!r}; this server takes 'response.create'.",
                              param="type", code="unsupported_event_type")
    generate = frame.get("generate", True)
    if not isinstance(generate, bool):
        raise invalid_request("'generate' must be a boolean.", param="generate")
    body = {k: v for k, v in frame.items() if k not in _NOT_BODY}
    body["stream"] = True
    return body, generate


def error_frame(err: OpenAIError) -> dict[str, Any]:
    """The `error` event for an error that ended a request before its response started; its
    status and headers (Retry-After) are what an HTTP client would have been given."""
    return {"type": "error", "status": err.status, **err.body(), "headers": dict(err.headers)}


def keepalive_frame(sequence_number: int) -> dict[str, Any]:
    """What a silent stream sends so that clients' idle timers (which WebSocket pings do not
    reset) see it alive; clients ignore it."""
    return {"type": "keepalive", "sequence_number": sequence_number}


def previous_not_found(response_id: str) -> OpenAIError:
    """A `previous_response_id` this connection cannot rebuild (as OpenAI answers it): the client
    sends the whole input again."""
    return invalid_request(f"Previous response with id '{response_id[:100]}' not found on this connection; "
                           "send the whole input without previous_response_id.",
                           param="previous_response_id", code="previous_response_not_found")


def connection_limit(age_limit: float) -> OpenAIError:
    return invalid_request(f"Responses websocket connection limit reached ({age_limit / 60:g} minutes). "
                           "Create a new websocket connection to continue.",
                           code="websocket_connection_limit_reached")


def warm_up(body: Mapping[str, Any], *, response_id: str, model: str) -> list[dict[str, Any]]:
    """The answer to `generate: false`: `response.created` and `response.completed`, no output;
    the id can be chained from like any other."""
    created = int(time.time())
    echo = ro.echo_parameters(body)
    start = ro.snapshot(response_id=response_id, created_at=created, model=model, echo=echo, status="in_progress",
                        output=[])
    done = ro.snapshot(response_id=response_id, created_at=created, model=model, echo=echo, status="completed",
                       output=[], completed_at=created, usage=ro.map_usage(None))
    return [{"type": "response.created", "sequence_number": 0, "response": start},
            {"type": "response.completed", "sequence_number": 1, "response": done}]


def failed_after_start(response: Mapping[str, Any], err: OpenAIError, *, sequence_number: int) -> dict[str, Any]:
    """The terminal of a relayed stream that broke after its start: the last state of its
    `response` the client was shown, failed with `err`."""
    return {"type": "response.failed", "sequence_number": sequence_number,
            "response": {**response, "status": "failed", "error": err.response_error()}}


def events_for(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A whole `response` object (a non-stream answer) as the events a stream of it ends with:
    `response.created`, each output item done, then its terminal."""
    status = response.get("status")
    terminal = {"failed": "response.failed", "incomplete": "response.incomplete"}.get(str(status),
                                                                                       "response.completed")
    output = _list(response.get("output"))
    events: list[dict[str, Any]] = [{"type": "response.created", "response": {**response, "status": "in_progress",
                                                                              "output": []}}]
    events += [{"type": "response.output_item.done", "output_index": i, "item": item} for i, item in enumerate(output)]
    events.append({"type": terminal, "response": dict(response)})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


@dataclass(frozen=True, slots=True)
class Turn:
    """What a connection keeps of the last response it served, to rebuild the next frame:
    that response's id, the whole input it answered, its output, their size as JSON (for a
    conversation begun by a whole-input frame, that frame's size stands for its input), and what
    the translation of that input left for the next one to continue from."""

    response_id: str
    input: list[Any]
    output: list[Any]
    size: int
    continuation: Continuation | None = None
    stored: bool = False  # the response is in the store too (a stored answer chained to it continues its chain)

    def continued(self, own: list[Any]) -> list[Any]:
        """The whole input of a frame chained to this turn that brought `own` items."""
        return [*self.input, *self.output, *own]


def next_turn(response: Mapping[str, Any], full_input: list[Any], input_size: int, max_size: int,
              continuation: Continuation | None = None, *, stored: bool = False) -> Turn | None:
    """The turn to keep after `response` (a final Responses object) answered `full_input`
    (`input_size`: its size as JSON, see `Turn`), or None: a response that
    failed cannot be chained from, and a conversation past `max_size` bytes of JSON is not kept
    (a chained frame then gets `previous_response_not_found`, and the client resends it all)."""
    if response.get("status") not in ("completed", "incomplete") or not isinstance(response.get("id"), str):
        return None
    output = _list(response.get("output"))
    size = input_size + len(_json.dumps(output))
    if size > max_size:
        return None
    return Turn(response["id"], full_input, list(output), size, continuation, stored)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
