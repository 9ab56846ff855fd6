"""Driving an ASGI app in-process, as a server would, without sockets."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    status: int = 0
    bytes: int = 0
    messages: int = 0
    first_body: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def scope_for(path: str, *, method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"gateway.test"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }


async def call(app: Any, path: str, body: bytes, outcome: Outcome | None = None, *, method: str = "POST") -> Outcome:
    """One request; the client never disconnects. Response bodies are counted, not kept."""
    outcome = outcome or Outcome()
    sent = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            outcome.status = message["status"]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            outcome.bytes += len(chunk)
            outcome.messages += 1
            if chunk:
                outcome.first_body.set()

    try:
        await app(scope_for(path, method=method), receive, send)
    finally:
        outcome.done.set()
    return outcome
