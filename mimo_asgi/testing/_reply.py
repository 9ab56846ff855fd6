"""The ASGI side of one fake answer: timing, faults, disconnect watching."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.types import Receive, Send

from .. import _json
from . import _render
from ._script import Answer
from ._validate import thinking_on



@dataclass
class RecordedRequest:
    """One request the fake received. Secrets never appear: `authorization` and `api-key`
    headers hold fingerprints (`Bearer sha256:1a2b3c4d`)."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes = field(repr=False)
    body: Any
    key_fingerprint: str | None
    at: float = field(default_factory=time.monotonic)
    status: int | None = None  # what the fake answered; None until the response starts
    disconnected: bool = False  # the client went away before the answer was complete

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


class Reply:
    """Writes one response and records its status; a client disconnect cancels the answer
    and sets `record.disconnected`."""

    def __init__(self, record: RecordedRequest, receive: Receive, send: Send) -> None:
        self.record = record
        self.receive = receive
        self.send = send
        self.finishing = False

    async def json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        await self._whole(status, b"application/json", _json.dumps(body), headers)

    async def error(
        self, status: int, body: Mapping[str, Any] | None, stream: bool, headers: Mapping[str, str] | None = None
    ) -> None:
        content_type, payload = _render.error_payload(status, body, stream)
        await self._whole(status, content_type, payload, headers)

    async def answer(self, answer: Answer, prefix: str) -> None:
        """Play `answer`, stopping early if the client goes away."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_disconnect, group.cancel_scope)
            await self._play(answer, prefix)
            group.cancel_scope.cancel()

    async def _play(self, answer: Answer, prefix: str) -> None:
        await anyio.sleep(answer.silence_before)
        if answer.status != 200:
            await self.error(answer.status, answer.error, self.record.stream, answer.headers)
            return
        body = self.record.body
        thinking = thinking_on(body)
        turn = _render.Turn(
            id=_render.new_id(),
            created=int(time.time()),
            model=body["model"],
            thinking=thinking,
            include_usage=_include_usage(body),
        )
        usage = _render.usage(answer, body, thinking, len(self.record.raw))
        if self.record.stream:
            await self._stream(answer, _render.sse_events(answer, turn, usage, prefix))
        else:
            await self._complete(answer, _json.dumps(_render.completion(answer, turn, usage)))

    async def _stream(self, answer: Answer, events: list[bytes]) -> None:
        await self._start(200, b"text/event-stream", answer.headers, extra=[(b"cache-control", b"no-cache")])
        for sent, event in enumerate(events):
            if sent == answer.cut_after:
                return  # returning without the final message: the server drops the connection
            if answer.stall_after is not None and sent == answer.stall_after[0]:
                await anyio.sleep(answer.stall_after[1])
            await self.send({"type": "http.response.body", "body": event, "more_body": True})
        if answer.cut_after is not None and answer.cut_after >= len(events):
            return
        await self._finish(b"")

    async def _complete(self, answer: Answer, payload: bytes) -> None:
        length = [(b"content-length", str(len(payload)).encode())]
        await self._start(200, b"application/json", answer.headers, extra=length)
        if answer.stall_after is not None:
            await anyio.sleep(answer.stall_after[1])
        if answer.cut_after is not None:
            await self.send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            return
        await self._finish(payload)

    async def _whole(self, status: int, content_type: bytes, payload: bytes, headers: Mapping[str, str] | None) -> None:
        length = [(b"content-length", str(len(payload)).encode())]
        await self._start(status, content_type, headers or {}, extra=length)
        await self._finish(payload)

    async def _start(
        self, status: int, content_type: bytes, headers: Mapping[str, str], extra: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        raw = [(b"content-type", content_type), *extra]
        raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        self.record.status = status
        await self.send({"type": "http.response.start", "status": status, "headers": raw})

    async def _finish(self, payload: bytes) -> None:
        self.finishing = True  # from here on, a disconnect message only means "response complete"
        await self.send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _watch_disconnect(self, scope: anyio.CancelScope) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if not self.finishing:
                    self.record.disconnected = True
                    scope.cancel()
                return


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left first."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up or tear down: acknowledge both."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
