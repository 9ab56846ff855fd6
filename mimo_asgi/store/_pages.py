"""`GET /v1/responses/{id}/input_items`: OpenAI's list shape over a stored record (pure)."""

from __future__ import annotations

from typing import Any

from ..translate.errors import invalid_request
from ._record import StoredResponse

MAX_LIMIT = 100


def _limit(value: Any) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LIMIT:
        raise invalid_request(f"'limit' must be an integer from 1 to {MAX_LIMIT}.", param="limit",
                              code="invalid_value")
    return value


def _position(ids: list[Any], wanted: Any, param: str) -> int:
    if not isinstance(wanted, str) or wanted not in ids:
        raise invalid_request(f"'{param}' must be the id of an input item of this response.", param=param,
                              code="invalid_value")
    return ids.index(wanted)


def input_items_page(record: StoredResponse, *, after: str | None = None, before: str | None = None,
                     limit: int | str | None = 20, order: str | None = "desc") -> dict[str, Any]:
    """One page of the record's own input items, as OpenAI lists them.

    `order` "desc" (default) lists the last item first. `after` / `before` are item ids
    bounding the page, exclusive, in that listing order: the page starts right after `after`
    (or at the start); with `before` alone it ends right before `before`. `limit` 1..100
    (default 20; strings from a query string accepted). Bad values raise `OpenAIError` 400
    naming the parameter. `has_more`: more items lie beyond the page on the side it was
    paged towards (after it, or before it when paging with `before` alone).
    """
    limit = 20 if limit is None else _limit(limit)
    order = order or "desc"
    if order not in ("asc", "desc"):
        raise invalid_request("'order' must be 'asc' or 'desc'.", param="order", code="invalid_value")
    items = list(record.input_items if order == "asc" else reversed(record.input_items))
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    start = _position(ids, after, "after") + 1 if after is not None else 0
    end = _position(ids, before, "before") if before is not None else len(items)
    window = items[start:end] if start < end else []
    data = window[-limit:] if before is not None and after is None else window[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(window) > limit,
    }
