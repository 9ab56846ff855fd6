"""The WebSocket transport: Responses over a WebSocket (Codex's built-in provider, the openai
SDK's `responses.connect()`). Each `response.create` frame is one request through the exchange,
answered with its events as text frames; a frame for a model that is not MiMo's goes to the host
app as an ordinary HTTP request and its answer comes back as frames.

A connection serves one response at a time, keeps reading while it does (a client's close ends
the response and frees its lease at once; frames that arrive before its terminal frame get an
`error` frame; a frame sent once the terminal is out waits until the response has settled),
and keeps the last request's input and output so that a frame sending only new items with
`previous_response_id` is rebuilt into the whole conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

import anyio
from starlette.types import Message, Receive, Scope, Send

from . import _json
from ._exchange import Exchange, Request
from ._relay import new_response_id
from ._runtime import Runtime
from ._sse import SSEDecoder, payloads
from ._writer import Phase, StreamWriter
from .store import Resumed, normalise_input, resume
from .translate.errors import OpenAIError, invalid_request
from .translate.websocket import (
    TERMINALS,
    Turn,
    connection_limit,
    error_frame,
    events_for,
    failed_after_start,
    keepalive_frame,
    next_turn,
    parse_frame,
    previous_not_found,
    warm_up,
)

logger = logging.getLogger("mimo_asgi")

_CLOSE_NORMAL, _CLOSE_INTERNAL_ERROR = 1000, 1011
_HOST_ANSWER_CAP = 64 * 1024 * 1024  # bytes of a non-stream host answer read to turn into frames
# Handshake headers that describe the WebSocket, not the request the host is asked.
_NOT_FORWARDED = frozenset({b"connection", b"upgrade", b"content-length", b"content-type", b"transfer-encoding",
                            b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
                            b"sec-websocket-protocol", b"accept-encoding"})


async def serve(rt: Runtime, scope: Scope, receive: Receive, send: Send) -> None:
    """One WebSocket on a Responses path, from its handshake to its close."""
    if (await receive())["type"] != "websocket.connect":
        return
    if rt.websockets >= rt.limits.max_websockets:
        await refuse(scope, send, "This gateway has too many open WebSocket connections; use HTTPS.")
        return
    await send({"type": "websocket.accept"})
    rt.websockets += 1
    try:
        await Connection(rt, scope, send).run(receive)
    finally:
        rt.websockets -= 1


async def refuse(scope: Scope, send: Send, message: str) -> None:
    """Refuse an upgrade (after its `websocket.connect`) with 426 Upgrade Required, on which
    clients such as Codex fall back to HTTPS at once. A server without the ASGI denial extension
    can only be told to close, which it answers with 403 (Codex then retries for seconds)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = _json.dumps(OpenAIError(426, message, type="invalid_request_error",
                                       code="websocket_not_available").body())
        await send({"type": "websocket.http.response.start", "status": 426,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": _CLOSE_NORMAL})


class Connection:
    """One client's socket: its frames in, one response at a time out, and the turn the next
    frame may chain to."""

    __slots__ = ("rt", "scope", "_send", "_lock", "_opened", "_turn", "_busy", "_ending", "_settled", "_gone",
                 "_closed")

    def __init__(self, rt: Runtime, scope: Scope, send: Send) -> None:
        self.rt = rt
        self.scope = scope
        self._send = send
        self._lock = anyio.Lock()  # the reader's error frames and a response's events share the socket
        self._opened = time.monotonic()
        self._turn: Turn | None = None
        self._busy = False  # a response is running: from its frame until its lease is back and its turn kept
        self._ending = False  # that response's terminal frame is (being) sent
        self._settled = anyio.Event()  # set once the running response is no longer busy
        self._gone = anyio.Event()  # the client closed the socket
        self._closed = False  # we closed it

    async def run(self, receive: Receive) -> None:
        """Read frames until the client closes (a `receive()` is always pending, so pings and
        closes are read while a response streams); each `response.create` is answered beside."""
        limits = self.rt.limits
        async with anyio.create_task_group() as tg:
            while not self._closed:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message["type"] != "websocket.receive":
                    continue
                text = message.get("text")
                try:
                    if text is None:
                        raise invalid_request("Binary frames are not supported; send response.create as JSON text.",
                                              code="unsupported_frame")
                    if self._busy:
                        if not self._ending:
                            raise invalid_request("A response is already in progress on this connection; send "
                                                  "the next response.create after its terminal event.",
                                                  code="response_in_progress")
                        # The client read the terminal and went on (Codex does at once) while the
                        # response still gives back its lease and keeps its turn for this frame.
                        await self._settled.wait()
                        if self._closed:
                            break
                    body, generate = parse_frame(text, limits.max_body_size)
                except OpenAIError as err:
                    await self.send_json(error_frame(err))
                    continue
                if time.monotonic() - self._opened > limits.websocket_age:
                    await self.send_json(error_frame(connection_limit(limits.websocket_age)))
                    await self.close(_CLOSE_NORMAL)
                    break
                self._busy, self._ending, self._settled = True, False, anyio.Event()
                tg.start_soon(self._respond, body, generate, len(text))
            self._gone.set()  # a response still running sees its client gone and ends

    async def send_json(self, obj: Any, *, last: bool = False) -> None:
        await self.send_text(_json.dumps(obj).decode(), last=last)

    async def send_text(self, text: str, *, last: bool = False) -> None:
        """One frame; `last`: the running response's terminal (or its `error` frame), after
        which the client may send its next frame."""
        if last:
            self.ending()
        lock = self._lock
        try:
            lock.acquire_nowait()
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            if not self._gone.is_set() and not self._closed:
                await self._send({"type": "websocket.send", "text": text})
        finally:
            lock.release()

    def ending(self) -> None:
        """The running response's terminal frame goes out next."""
        self._ending = True

    async def close(self, code: int) -> None:
        async with self._lock:
            if not self._closed and not self._gone.is_set():
                self._closed = True
                await self._send({"type": "websocket.close", "code": code})

    async def _respond(self, body: dict[str, Any], generate: bool, size: int) -> None:
        try:
            await self._answer(body, generate, size)
        except OpenAIError as err:
            await self.send_json(error_frame(err), last=True)
        except Exception:  # the response's state is unknown: the client must start afresh
            logger.exception("mimo_asgi: unexpected error serving a WebSocket frame")
            await self.close(_CLOSE_INTERNAL_ERROR)
        finally:
            self._busy = False
            self._settled.set()

    async def _answer(self, body: dict[str, Any], generate: bool, size: int) -> None:
        """One `response.create`: rebuilt into the whole conversation, routed, answered; the
        connection then keeps its turn."""
        rt, turn = self.rt, self._turn
        own = normalise_input(body.get("input") if body.get("input") is not None else [])
        previous = body.get("previous_response_id")
        chained = turn is not None and previous == turn.response_id
        resumed = None
        if chained:  # the whole conversation is the connection's; the frame keeps what it said (echoed)
            assert turn is not None
            # What is kept is the items: each frame's own tools and instructions are not counted again.
            full, size = turn.continued(own), turn.size + len(_json.dumps(own))
            resumed = Resumed(full, own if turn.stored else full, None)
        elif previous not in (None, "") and (rt.store is None or not isinstance(previous, str)):
            raise previous_not_found(str(previous))
        else:  # the whole input, or a stored response's continuation (the store rebuilds it)
            full = own
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid_request("'model' is required and must be a string.", param="model")
        since = turn.continuation if chained and turn is not None else None
        # Stored, a chained frame's answer continues the stored chain when the turn it follows
        # was stored, else it starts one holding the whole conversation.
        exchange = Exchange(rt, Request("responses", body, model, self.scope, resumed=resumed,
                                        chained=turn is not None and turn.stored, since=since,
                                        continues=True))
        stored = None
        try:
            mine = await exchange.route()
            if not generate:  # a warm-up: nothing is generated, upstream or by the host
                await exchange.release()
                if not chained and previous not in (None, ""):  # its chain is the store's: kept whole
                    assert rt.store is not None
                    full = (await resume(rt.store, body, refresh_ttl=rt.store_ttl)).input
                    size = len(_json.dumps(full))
                response_id = new_response_id()
                created, done = warm_up(body, response_id=response_id, model=model)
                await self.send_json(created)
                await self.send_json(done, last=True)
                self._turn = Turn(response_id, full, [], size) if size <= rt.limits.max_body_size else None
                return
            if mine:
                writer = FrameWriter(self, first_byte_timeout=rt.upstream.timeouts.first_byte,
                                     keepalive_seconds=rt.keepalive_seconds)
                result = await exchange.run(writer, self._gone.wait)
                response, continuation, stored = result.response, result.continuation, result.stored
                full = result.conversation if result.conversation is not None else full
            else:  # the host knows nothing of this connection: the whole conversation, no previous id
                whole = {**body, "input": full, "previous_response_id": None} if chained else body
                response, continuation = await self._bridge(whole), None
        finally:
            await exchange.release()
        if response is not None:
            stateless = chained or previous in (None, "")
            self._turn = next_turn(response, full, size, rt.limits.max_body_size, continuation,
                                   stored=stored is not None) if stateless else None

    async def _bridge(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """A frame for the host: `POST` to the same path with the whole input, the handshake's
        headers and `stream: true`; its answer comes back as frames. Returns the final response."""
        payload = _json.dumps(body)
        host = HostAnswer(self)
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": payload, "more_body": False}
            await self._gone.wait()
            return {"type": "http.disconnect"}

        async def cancel_when_gone(scope: anyio.CancelScope) -> None:
            await self._gone.wait()
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_when_gone, tg.cancel_scope)
            host.done = tg.cancel_scope  # once its terminal is relayed, the rest of its answer is not waited for
            try:
                await self.rt.app(http_scope(self.scope, len(payload)), receive, host.send)
            except Exception:
                logger.exception("mimo_asgi: the host app failed on a bridged WebSocket frame")
                if host.status == 0:
                    host.status = 500
            tg.cancel_scope.cancel()
        if self._gone.is_set():
            return None
        return await host.finish()


def http_scope(scope: Scope, length: int) -> Scope:
    """The HTTP scope of a `POST` to the WebSocket's path, with its handshake's headers."""
    headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() not in _NOT_FORWARDED]
    headers += [(b"content-type", b"application/json"), (b"content-length", str(length).encode()),
                (b"accept", b"text/event-stream")]
    return {**{k: v for k, v in scope.items() if k not in ("subprotocols", "extensions")},
            "type": "http", "method": "POST", "scheme": "https" if scope.get("scheme") == "wss" else "http",
            "http_version": scope.get("http_version", "1.1"), "headers": headers, "extensions": {}}


class HostAnswer:
    """The host app's answer to a bridged frame, as frames: an SSE stream relayed event by event;
    a JSON response as `response.created`, its items done, its terminal; anything else not 2xx
    as an `error` frame with its status."""

    __slots__ = ("_conn", "status", "_stream", "_decoder", "_parts", "_size", "_headers", "final", "_ended", "_shown",
                 "_sequence", "done")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.status = 0
        self._stream = False
        self._decoder = SSEDecoder()
        self._parts: list[bytes] = []
        self._size = 0
        self._headers: dict[str, str] = {}
        self.final: dict[str, Any] | None = None
        self._ended = False  # a terminal event was relayed
        self._shown: dict[str, Any] | None = None  # the last `response` a relayed event carried
        self._sequence = 0  # the sequence number after the last relayed event's
        self.done: anyio.CancelScope | None = None  # cancelled once the terminal is relayed

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message.get("headers", ())}
            self._stream = 200 <= self.status < 300 and \
                self._headers.get("content-type", "").startswith("text/event-stream")
        elif message["type"] == "http.response.body":
            data = message.get("body", b"")
            if self._stream:
                await self._relay(self._decoder.feed(data))
            elif self._size + len(data) <= _HOST_ANSWER_CAP:
                self._size += len(data)
                self._parts.append(data)

    async def _relay(self, events: list[Any]) -> None:
        for event in events:
            if self._ended or event.data == "[DONE]":
                continue  # nothing after the terminal: a client takes it as its next request's answer
            try:
                parsed = _json.loads(event.data)
            except _json.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                number = parsed.get("sequence_number")
                self._sequence = number + 1 if isinstance(number, int) else self._sequence + 1
                if isinstance(parsed.get("response"), dict):
                    self._shown = parsed["response"]
                if parsed.get("type") in TERMINALS:
                    self._ended = True
                    self.final = self._shown
            await self._conn.send_text(event.data, last=self._ended)
            if self._ended and self.done is not None:  # the client's next frame waits on this one
                self.done.cancel()

    async def finish(self) -> dict[str, Any] | None:
        if self._stream:
            await self._relay(self._decoder.close())
            if not self._ended:
                err = OpenAIError(502, "The host's stream ended without a terminal event.", type="server_error",
                                  code="stream_truncated")
                if self._shown is None:  # the answer had not started
                    await self._conn.send_json(error_frame(err), last=True)
                else:
                    await self._conn.send_json(failed_after_start(self._shown, err, sequence_number=self._sequence),
                                               last=True)
            return self.final
        raw = b"".join(self._parts)
        try:
            answer = _json.loads(raw) if raw else None
        except _json.JSONDecodeError:
            answer = None
        if 200 <= self.status < 300 and isinstance(answer, dict) and isinstance(answer.get("output"), list):
            *events, terminal = events_for(answer)
            for event in events:
                await self._conn.send_json(event)
            await self._conn.send_json(terminal, last=True)
            return answer
        await self._conn.send_json(error_frame(self._error(answer, raw)), last=True)
        return None

    def _error(self, answer: Any, raw: bytes) -> OpenAIError:
        status = self.status if self.status >= 400 else 502
        obj = answer.get("error") if isinstance(answer, dict) else None
        retry = {"retry-after": self._headers["retry-after"]} if "retry-after" in self._headers else {}
        if isinstance(obj, dict) and isinstance(obj.get("message"), str):
            return OpenAIError(status, obj["message"], type=obj.get("type") if isinstance(obj.get("type"), str) else None,
                               param=obj.get("param") if isinstance(obj.get("param"), str) else None,
                               code=obj.get("code") if isinstance(obj.get("code"), str) else None, headers=retry)
        text = raw.decode("utf-8", "replace").strip()[:500] or "no body"
        if self.status == 0:
            text = "the host app did not answer"
        elif 200 <= self.status < 300:
            text = f"the host answered {self.status} without a Responses object"
        return OpenAIError(status, f"The host app answered {self.status}: {text}", headers=retry)


class FrameWriter(StreamWriter):
    """A response's events as text frames, one event each; an error before its start as one
    `error` frame. Keep-alive: a `keepalive` event (clients' idle timers ignore pings)."""

    __slots__ = ("_conn", "_events")

    def __init__(self, conn: Connection, *, first_byte_timeout: float, keepalive_seconds: float) -> None:
        super().__init__(first_byte_timeout=first_byte_timeout, keepalive_seconds=keepalive_seconds)
        self._conn = conn
        self._events = 0

    async def error(self, err: OpenAIError) -> None:
        self.status = err.status
        self.phase = Phase.DONE
        self.first_sent = time.perf_counter()
        await self._conn.send_json(error_frame(err), last=True)

    async def answer(self, status: int, obj: Any) -> None:
        raise AssertionError("over a WebSocket every answer is a stream")

    async def _start(self) -> None:
        self.status = 200

    def _out(self, data: bytes) -> Awaitable[None]:
        return self._frames(data)

    async def _frames(self, data: bytes) -> None:
        for payload in payloads(data):
            self._events += 1
            await self._conn.send_text(payload.decode())

    async def end(self, tail: bytes = b"") -> None:
        self._conn.ending()  # `tail` holds the terminal (a stream's is never written before)
        await super().end(tail)

    async def _finish(self, tail: bytes) -> None:
        if tail:
            await self._out(tail)

    async def _keepalive(self) -> None:
        await self._conn.send_json(keepalive_frame(self._events))
