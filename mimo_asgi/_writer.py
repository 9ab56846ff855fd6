"""Writing an answer: the phase it is in, and the HTTP writer (SSE or one JSON body).

A MiMo stream's first bytes are held back until its first content, so that a failover can
still replace the answer; `StreamWriter` owns that rule, its bound (the first-byte timeout)
and the keep-alive of a silent stream, whatever the transport. A transport's writer adds how
bytes reach its client: `HTTPWriter` here, `FrameWriter` in `_websocket` (one event a frame).

What a writer is given are the client's wire bytes for a stream: SSE-encoded Responses events
or Chat Completions chunks, as the stream translators make them.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import anyio
from starlette.types import Send

from . import _json
from ._sse import KEEPALIVE
from .translate.errors import OpenAIError

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class Phase(enum.IntEnum):
    """Where an answer is; it only moves forward, except HELD -> IDLE on a failover."""

    IDLE = 0  # nothing written or held: an error is still answered as an error
    HELD = 1  # stream bytes held back until the first content; a failover drops them
    STARTING = 2  # the answer's start is being written; writes queue behind it; no failover from here
    STREAMING = 3  # stream bytes go straight out
    DONE = 4  # the answer is complete


# Read once per upstream read: globals, not attribute look-ups.
_STREAMING = Phase.STREAMING
_monotonic = time.monotonic


class _Done:
    """An awaitable that is already done."""

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_NOTHING = _Done()


class StreamWriter:
    """The transport-independent half of a writer. Subclasses define `_start` (the answer's
    start, once), `_out` (stream bytes), `_finish` (the last bytes), `_keepalive` and `error`."""

    __slots__ = ("phase", "status", "first_sent", "last_sent", "on_start", "_held", "_lock", "_streaming",
                 "_first_byte", "_keepalive_after")

    def __init__(self, *, first_byte_timeout: float, keepalive_seconds: float) -> None:
        self.phase = Phase.IDLE
        self.status = 0
        self.first_sent: float | None = None  # perf_counter() when the answer began reaching the client
        self.last_sent = 0.0  # monotonic() of the last stream write
        self.on_start: Callable[[], None] | None = None  # called once, when there is no going back
        self._held: list[bytes] = []
        self._lock: anyio.Lock | None = anyio.Lock()  # both dropped once streaming: an open stream's memory
        self._streaming: anyio.Event | None = anyio.Event()
        self._first_byte = first_byte_timeout
        self._keepalive_after = keepalive_seconds

    @property
    def started(self) -> bool:
        """The client has, or is getting, the start of the answer: no failover, no error answer."""
        return self.phase >= Phase.STARTING

    def write(self, data: bytes, *, content: bool) -> Awaitable[None]:
        """Stream bytes. Until the first content they are held back (`ticker` bounds the wait).
        While streaming this is the ASGI send itself (no coroutine of its own: it runs once per
        upstream read)."""
        if self.phase is _STREAMING:
            if data:
                self.last_sent = _monotonic()
                return self._out(data)
            return _NOTHING
        return self._hold(data, content)

    async def _hold(self, data: bytes, content: bool) -> None:
        if data:
            self._held.append(data)
            if self.phase is Phase.IDLE:
                self.phase = Phase.HELD
        if content or self.phase is Phase.STARTING:
            await self.commit()

    async def commit(self) -> None:
        """Write the answer's start and whatever was held back; from now on there is no failover."""
        if self.phase >= Phase.STREAMING:  # the usual case, from the ticker: skip the lock (a checkpoint)
            return
        lock, streaming = self._lock, self._streaming
        assert lock is not None and streaming is not None
        try:  # uncontended, as nearly always: no checkpoint queueing the first byte behind other tasks
            lock.acquire_nowait()
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            if self.phase >= Phase.STREAMING:  # done by another task while this one waited
                return
            if self.phase < Phase.STARTING:
                self.phase = Phase.STARTING
                self.first_sent = time.perf_counter()
                if self.on_start is not None:
                    self.on_start()
                await self._start()
            while self._held:
                held = b"".join(self._held)
                self._held.clear()
                await self._out(held)
            self.last_sent = time.monotonic()
            self.phase = Phase.STREAMING
            streaming.set()
            self._lock = self._streaming = None
        finally:
            lock.release()

    async def end(self, tail: bytes = b"") -> None:
        """The stream's last bytes (its terminal); the answer is complete."""
        if self.phase < Phase.STREAMING:
            await self.write(tail, content=True)
            tail = b""
        self.phase = Phase.DONE
        await self._finish(tail)

    def drop(self) -> None:
        """A failover: what the failed attempt held back never reaches the client."""
        assert self.phase < Phase.STARTING
        self._held.clear()
        self.phase = Phase.IDLE

    async def ticker(self, cancel: anyio.CancelScope) -> None:
        """Beside a live stream: ends the hold-back after the first-byte timeout at the latest,
        then keeps a silent stream alive every `keepalive_seconds` (0: never)."""
        streaming = self._streaming
        if streaming is not None and self.phase < Phase.STREAMING:
            with anyio.move_on_after(self._first_byte):
                await streaming.wait()
            await self.commit()
        interval = self._keepalive_after
        if interval <= 0:
            return
        while True:
            idle = time.monotonic() - self.last_sent
            if idle >= interval:
                self.last_sent = time.monotonic()
                await self._keepalive()
            else:
                await anyio.sleep(interval - idle)

    async def _start(self) -> None:
        raise NotImplementedError

    def _out(self, data: bytes) -> Awaitable[None]:
        """Stream bytes out: the awaitable that sends them (not a coroutine of its own: this runs
        once per upstream read)."""
        raise NotImplementedError

    async def _finish(self, tail: bytes) -> None:
        raise NotImplementedError

    async def _keepalive(self) -> None:
        raise NotImplementedError

    async def error(self, err: OpenAIError) -> None:
        """The answer to a request that failed before its start."""
        raise NotImplementedError

    async def answer(self, status: int, obj: Any) -> None:
        """A whole answer at once (a non-stream request's)."""
        raise NotImplementedError


class HTTPWriter(StreamWriter):
    """An HTTP answer: an SSE stream, or one JSON body (a non-stream answer or an error)."""

    __slots__ = ("_send",)

    def __init__(self, send: Send, *, first_byte_timeout: float, keepalive_seconds: float) -> None:
        super().__init__(first_byte_timeout=first_byte_timeout, keepalive_seconds=keepalive_seconds)
        self._send = send

    async def answer(self, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """One JSON body."""
        payload = _json.dumps(obj)
        self.status = status
        self.phase = Phase.DONE
        self.first_sent = time.perf_counter()
        await self._send({"type": "http.response.start", "status": status,
                          "headers": [*_JSON_HEADERS, *(headers or ()),
                                      (b"content-length", str(len(payload)).encode())]})
        await self._send({"type": "http.response.body", "body": payload})

    async def error(self, err: OpenAIError) -> None:
        await self.answer(err.status, err.body(), http_headers(err))

    async def _start(self) -> None:
        self.status = 200
        await self._send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})

    def write(self, data: bytes, *, content: bool) -> Awaitable[None]:
        if self.phase is _STREAMING:  # `StreamWriter.write` with `_out` in line: once per upstream read
            if data:
                self.last_sent = _monotonic()
                return self._send({"type": "http.response.body", "body": data, "more_body": True})
            return _NOTHING
        return self._hold(data, content)

    def _out(self, data: bytes) -> Awaitable[None]:
        return self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def _finish(self, tail: bytes) -> None:
        await self._send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _keepalive(self) -> None:
        await self._out(KEEPALIVE)


def http_headers(err: OpenAIError) -> list[tuple[bytes, bytes]]:
    """An error's headers (Retry-After, ...) as ASGI headers; a non-ASCII value is left out."""
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items() if v.isascii()]
