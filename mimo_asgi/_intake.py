"""An inspected HTTP request's body: read under the size cap, kept for an exact replay to the
host, undone from its Content-Encoding and parsed."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Receive, Scope

from . import _decode
from ._exchange import Request
from .translate.errors import OpenAIError


def declared_too_large(headers: Iterable[tuple[bytes, bytes]], cap: int) -> bool:
    """A `content-length` over the cap: refused before a byte is read."""
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > cap:
            return True
    return False


def too_large(cap: int) -> OpenAIError:
    return OpenAIError(413, f"Request body exceeds the {cap} byte limit.", code="request_too_large")


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` preceded by the messages already read from it, in their original chunking."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def read_request(route: str, scope: Scope, receive: Receive, messages: list[Message],
                       max_body_size: int) -> Request | None:
    """The parsed request, every message read kept in `messages` (for a replay); None when the
    client left before its body was complete. Raises OpenAIError: 413 over the cap, 415 for an
    unknown Content-Encoding, 400 for a body that is not a JSON object with a string `model`."""
    headers = scope.get("headers", ())
    if declared_too_large(headers, max_body_size):
        raise too_large(max_body_size)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_size:
            raise too_large(max_body_size)
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(parts)  # one part: that part itself, not a copy
    raw = _decode.decode_body(raw, _decode.content_encoding(headers), max_size=max_body_size)
    body, model = _decode.parse_body(raw)
    return Request(route, body, model, scope)
