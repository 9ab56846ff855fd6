"""One stored Responses turn, its JSON encoding, and the store protocol (pure).

A record holds what a later turn needs to continue the conversation: the request's own
input items (not its ancestors'), the final `response` object (whose output reasoning
items carry their sealed `encrypted_content`), the parent id, and the account that served
it (for affinity).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .. import _json
from ..translate._response_object import new_id
from ..translate.errors import invalid_request

log = logging.getLogger("mimo_asgi.store")

DEFAULT_TTL = 24 * 3600.0                     # seconds a stored response lives after its last use
DEFAULT_MAX_RECORD_BYTES = 32 * 1024 * 1024   # a 16 MiB request plus its output, with room
_FORMAT = 1
_ENCRYPTED = "reasoning.encrypted_content"
# Item types whose `id` the translator reads as the call id when `call_id` is missing:
# inventing one would turn an invalid item into a valid one.
_ID_IS_CALL_ID = frozenset({"local_shell_call", "local_shell_call_output"})
_ID_PREFIX = {
    "message": "msg", "function_call": "fc", "function_call_output": "fco", "custom_tool_call": "ctc",
    "custom_tool_call_output": "ctco", "reasoning": "rs", "web_search_call": "ws",
    "tool_search_call": "tsc", "tool_search_output": "tso",
}


class StoreUnavailable(Exception):
    """The store's backend cannot be reached (connection refused, timeout, server error)."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A finished response as the client saw it, plus what continuing it needs. JSON values only."""

    id: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    previous_response_id: str | None = None
    account: str | None = None
    created_at: float = field(default_factory=time.time)

    @classmethod
    def from_response(cls, response: Mapping[str, Any], input_items: list[dict[str, Any]], *,
                      account: str | None = None, created_at: float | None = None) -> StoredResponse:
        """A record for a final `response` object; its id and parent come from the object itself."""
        created = response.get("created_at")
        return cls(
            id=str(response["id"]),
            response=dict(response),
            input_items=list(input_items),
            previous_response_id=response.get("previous_response_id") or None,
            account=account,
            created_at=float(created_at if created_at is not None else
                             created if isinstance(created, (int, float)) else time.time()),
        )

    def encode(self) -> bytes:
        """Compact JSON; raises TypeError/ValueError for values JSON cannot hold."""
        return _json.dumps_kept({
            "v": _FORMAT, "id": self.id, "response": self.response, "input_items": self.input_items,
            "previous_response_id": self.previous_response_id, "account": self.account,
            "created_at": self.created_at,
        })

    @classmethod
    def decode(cls, data: bytes | str) -> StoredResponse:
        """The record `encode` wrote; raises ValueError for anything else."""
        try:
            obj = _json.loads(data)
        except _json.JSONDecodeError as exc:
            raise ValueError("stored record is not JSON") from exc
        if not (isinstance(obj, dict) and obj.get("v") == _FORMAT and isinstance(obj.get("id"), str)
                and isinstance(obj.get("response"), dict) and isinstance(obj.get("input_items"), list)):
            raise ValueError("stored record has an unknown shape")
        return cls(id=obj["id"], response=obj["response"], input_items=obj["input_items"],
                   previous_response_id=obj.get("previous_response_id"), account=obj.get("account"),
                   created_at=float(obj.get("created_at") or 0.0))


def _items(record: StoredResponse) -> Iterator[dict[str, Any]]:
    """The items a record holds: its input items, then its output."""
    output = record.response.get("output")
    for item in (*record.input_items, *(output if isinstance(output, list) else ())):
        if isinstance(item, dict):
            yield item


def item_ids(record: StoredResponse) -> list[str]:
    """The ids of the items a record holds."""
    return [item["id"] for item in _items(record) if isinstance(item.get("id"), str)]


def find_item(record: StoredResponse, item_id: str) -> dict[str, Any] | None:
    return next((item for item in _items(record) if item.get("id") == item_id), None)


def encode_for_store(record: StoredResponse, max_bytes: int) -> bytes | None:
    """The record's bytes, or None (with a warning naming only its id) when it cannot be stored:
    values JSON cannot hold, or more than `max_bytes`."""
    try:
        data = record.encode()
    except (TypeError, ValueError):
        log.warning("response %s not stored: it holds values JSON cannot encode", record.id)
        return None
    if len(data) > max_bytes:
        log.warning("response %s not stored: %d bytes is over the %d-byte limit", record.id, len(data), max_bytes)
        return None
    return data


@runtime_checkable
class ResponseStore(Protocol):
    """Where stored responses live. Every method may raise `StoreUnavailable`.

    `put` returns False (and logs a warning) when the record is not stored: too large, or
    not encodable as JSON. `ttl` defaults to the store's `default_ttl`.
    """

    async def put(self, record: StoredResponse, ttl: float | None = None) -> bool: ...

    async def get(self, response_id: str) -> StoredResponse | None: ...

    async def delete(self, response_id: str) -> bool: ...

    async def touch(self, response_ids: Iterable[str], ttl: float | None = None) -> None: ...

    async def item(self, item_id: str) -> dict[str, Any] | None:
        """The item of that id in a stored response (its input or its output), for an
        `item_reference`; None when no live record holds it."""
        ...

    async def aclose(self) -> None: ...


def should_store(body: Mapping[str, Any]) -> bool:
    """Whether the client asked for storage: `store` defaults to true, as at OpenAI."""
    return body.get("store") is not False


def _parts(content: Any, role: Any) -> Any:
    if not isinstance(content, str):
        return content
    if role == "assistant":
        return [{"type": "output_text", "text": content, "annotations": []}]
    return [{"type": "input_text", "text": content}]


def normalise_input(value: Any) -> list[dict[str, Any]]:
    """The request's `input` as a list of items, each with an `id` (fresh copies; idempotent).

    A string becomes one user message; a message without `type` gets `type: "message"`; string
    message content becomes one `input_text` (or, for assistant, `output_text`) part. Items
    that are not objects are kept as they are, for the translator to reject.
    """
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": value}] if value else []
    if not isinstance(value, list):
        raise invalid_request("'input' must be a string or an array of input items.", param="input")
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            out.append(item)
            continue
        item = dict(item)
        kind = item.setdefault("type", "message")
        if kind == "message":
            item["content"] = _parts(item.get("content"), item.get("role"))
        if not item.get("id") and not (kind in _ID_IS_CALL_ID and not item.get("call_id")):
            item["id"] = new_id(_ID_PREFIX.get(kind, "msg") if isinstance(kind, str) else "msg")
        out.append(item)
    return out


def response_for_client(record: StoredResponse, include: Iterable[str] = ()) -> dict[str, Any]:
    """The stored `response` for `GET /v1/responses/{id}`: reasoning blobs only when
    `include` names `reasoning.encrypted_content` (the stored copy always has them)."""
    response = dict(record.response)
    if _ENCRYPTED in include:
        return response
    output = response.get("output")
    if isinstance(output, list):
        response["output"] = [
            {k: v for k, v in item.items() if k != "encrypted_content"}
            if isinstance(item, dict) and item.get("type") == "reasoning" else item
            for item in output
        ]
    return response
