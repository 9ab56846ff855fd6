"""Rebuilding a conversation from a `previous_response_id` chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..translate.errors import OpenAIError, invalid_request, store_unavailable
from ._record import ResponseStore, StoredResponse, StoreUnavailable, normalise_input

__all__ = ["MAX_CHAIN", "Resumed", "chain", "rebuild_input", "resume", "store_unavailable"]

MAX_CHAIN = 100  # stored turns followed before giving up


def _not_found(response_id: str, requested: str) -> OpenAIError:
    where = "" if response_id == requested else f" (an earlier turn of '{requested[:100]}')"
    return OpenAIError(404, f"Previous response with id '{response_id[:100]}'{where} not found; "
                       "it may have expired or was created with store=false.",
                       param="previous_response_id", code="previous_response_not_found")


async def chain(store: ResponseStore, response_id: str, *, max_depth: int = MAX_CHAIN) -> list[StoredResponse]:
    """The stored turns ending at `response_id`, oldest first.

    Raises `OpenAIError`: 404 when any turn is missing or expired, 400 past `max_depth`
    turns, 500 on a cycle, 503 when the store is down.
    """
    turns: list[StoredResponse] = []
    seen: set[str] = set()
    current: str | None = response_id
    while current:
        if current in seen:
            raise OpenAIError(500, "The stored conversation chain is inconsistent (it loops).",
                              code="previous_response_chain_invalid")
        if len(turns) >= max_depth:
            raise invalid_request(f"The conversation is longer than {max_depth} stored responses; "
                                  "send the history in 'input' instead.", param="previous_response_id",
                                  code="previous_response_chain_too_long")
        seen.add(current)
        try:
            record = await store.get(current)
        except StoreUnavailable:
            raise store_unavailable() from None
        if record is None:
            raise _not_found(current, response_id)
        turns.append(record)
        current = record.previous_response_id
    turns.reverse()
    return turns


def _output_items(record: StoredResponse) -> list[dict[str, Any]]:
    output = record.response.get("output")
    return [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []


@dataclass(frozen=True, slots=True)
class Resumed:
    """A request made stateless: `input` is the full history plus `own_items`, the request's
    own input normalised (store these as the new record's `input_items`: same ids); `parent`
    is the `previous_response_id` record (its `account` serves affinity), or None."""

    input: list[dict[str, Any]]
    own_items: list[dict[str, Any]]
    parent: StoredResponse | None


async def resume(store: ResponseStore, body: Mapping[str, Any], *, max_depth: int = MAX_CHAIN,
                 refresh_ttl: float | None = None) -> Resumed:
    """`rebuild_input`, also returning the request's own items and the parent record."""
    own = normalise_input(body.get("input") if body.get("input") is not None else [])
    previous = body.get("previous_response_id")
    if previous in (None, ""):
        return Resumed(own, own, None)
    if not isinstance(previous, str):
        raise invalid_request("'previous_response_id' must be a string.", param="previous_response_id")
    turns = await chain(store, previous, max_depth=max_depth)
    if refresh_ttl is not None:
        try:
            await store.touch([t.id for t in turns], refresh_ttl)
        except StoreUnavailable:
            raise store_unavailable() from None
    items: list[dict[str, Any]] = []
    for turn in turns:
        items.extend(turn.input_items)
        items.extend(_output_items(turn))
    items.extend(own)
    return Resumed(items, own, turns[-1])


async def rebuild_input(store: ResponseStore, body: Mapping[str, Any], *, max_depth: int = MAX_CHAIN,
                        refresh_ttl: float | None = None) -> list[dict[str, Any]]:
    """The full `input` for a request: for each stored turn of its `previous_response_id`
    chain (oldest first) that turn's input items then its output items, then the request's
    own input normalised (`normalise_input`; a missing `input` counts as empty).

    Output reasoning items keep their sealed `encrypted_content`, so the translator restores
    the reasoning. `instructions` are not carried over (as at OpenAI). With `refresh_ttl`,
    every turn of the chain gets that TTL afresh, so a conversation lives as long as its
    last use. Errors as `chain`; a non-string `previous_response_id` is a 400.
    """
    return (await resume(store, body, max_depth=max_depth, refresh_ttl=refresh_ttl)).input
