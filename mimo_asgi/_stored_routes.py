"""`GET /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` and `DELETE /v1/responses/{id}`
for responses we stored; any other id is the host's."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from . import _json
from .store import StoreUnavailable, input_items_page, response_for_client, store_unavailable
from .translate.errors import OpenAIError
from ._runtime import Runtime


def stored_target(prefixes: tuple[str, ...], scope: Scope) -> tuple[str, bool] | None:
    """(response id, wants input items) when the path addresses a stored response."""
    path: str = scope["path"]
    for prefix in prefixes:
        if path.startswith(prefix):
            rest = path[len(prefix):].split("/")
            if len(rest) == 1 and rest[0].startswith("resp_"):
                return rest[0], False
            if len(rest) == 2 and rest[1] == "input_items" and rest[0].startswith("resp_") and scope["method"] == "GET":
                return rest[0], True
    return None


async def serve_stored(rt: Runtime, scope: Scope, receive: Receive, send: Send, target: tuple[str, bool]) -> None:
    response_id, items = target
    store = rt.store
    assert store is not None
    try:
        record = await store.get(response_id)
        if record is None:
            await rt.app(scope, receive, send)
            return
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        if scope["method"] == "DELETE":
            await store.delete(response_id)
            body: Any = {"id": response_id, "object": "response", "deleted": True}
        elif items:
            body = input_items_page(record, after=query.get("after"), before=query.get("before"),
                                    limit=query.get("limit", 20), order=query.get("order", "desc"))
        else:
            include = [v for k, vs in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
                       if k in ("include", "include[]") for v in vs]
            body = response_for_client(record, include)
        status = 200
        headers: dict[str, str] = {}
    except (StoreUnavailable, OpenAIError) as exc:
        error = store_unavailable() if isinstance(exc, StoreUnavailable) else exc
        body, status, headers = error.body(), error.status, error.headers
    payload = _json.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]})
    await send({"type": "http.response.body", "body": payload})
