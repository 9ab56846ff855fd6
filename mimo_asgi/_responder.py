"""One inspected request: body peek and replay, the routing decision, the lease's lifetime,
response writing and disconnect watching."""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from starlette.types import Message, Receive, Scope, Send

from . import _decode, _json, _models
from ._sse import KEEPALIVE
from .accounts import Account, RouteRequest
from .store import Resumed, resume, should_store
from .translate.errors import OpenAIError

if TYPE_CHECKING:
    from ._middleware import MimoMiddleware

logger = logging.getLogger("mimo_asgi")
T = TypeVar("T")

_RELEASE_WAIT = 5.0  # seconds a shared store may take to free a slot before it is left to expire
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def handle(mw: MimoMiddleware, route: str, scope: Scope, receive: Receive, send: Send) -> None:
    """An inspected request. With built-in routing (the decision needs only the model) a body
    that came in one message is skimmed for its model (the JSON validated, no objects built)
    and, when no route serves it, handed to the host without anything else: no full parse, no
    per-request object. An encoded body is not JSON as sent, so it takes the long way."""
    if mw.routes_by_model and not _declared_too_large(scope.get("headers", ()), mw.max_body_size):
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            if len(body) <= mw.max_body_size:
                model = _decode.model_of(body)
                if model is not None and mw.declines(model):
                    await mw.app(scope, replay([message], receive), send)
                    return
        receive = replay([message], receive)
    await MimoRequest(mw, route, scope, receive, send).run()


def _declared_too_large(headers: Any, cap: int) -> bool:
    for name, value in headers:
        if name == b"content-length" and value.isdigit() and int(value) > cap:
            return True
    return False


def replay(messages: list[Message], receive: Receive) -> Receive:
    """`receive` preceded by the messages already read from it, in their original chunking."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class MimoRequest:
    """Per-request state; the middleware itself holds none.

    The defaults of the immutable fields live on the class, so a request that only passes
    through assigns the few it uses (each assignment shows in benchmark 1's per-request CPU)."""

    body: dict[str, Any]  # set once the body is parsed
    model = ""
    account: Account | None = None
    _headers: dict[str, str] | None = None
    lease: Any = None
    tried: frozenset[str] = frozenset()  # accounts already failed over from
    failovers = 0
    resumed: Resumed | None = None  # the conversation rebuilt from the store
    upstream_model = ""
    started = False  # response headers sent (or being sent)
    committed = False  # held-back stream bytes flushed; no failover from here
    complete = False  # the last response message is being sent
    _held: list[bytes]  # the rest are made in _serve: pass-through never pays for them
    _commit_lock: anyio.Lock | None = None
    _committed: anyio.Event | None = None
    last_sent = 0.0
    status = 0
    disconnected = False
    ttfb: float | None = None
    usage: dict[str, Any] | None = None
    outcome = ""

    def __init__(self, mw: MimoMiddleware, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.mw = mw
        self.route = route
        self.scope = scope
        self.receive = receive
        self.send = send
        self.messages: list[Message] = []
        self.t0 = time.perf_counter()

    # -- the request ------------------------------------------------------------------

    async def run(self) -> None:
        headers = self.scope.get("headers", ())
        mw = self.mw
        try:
            raw = await self._read_body(headers)
            if raw is None:  # the client left before the body was complete
                return
            raw = _decode.decode_body(raw, _decode.content_encoding(headers), max_size=mw.max_body_size)
            self.body, self.model = _decode.parse_body(raw)
        except OpenAIError as err:
            await self.send_error(err)
            return
        try:
            try:
                # No coroutine for the pass-through answer built-in routing gives anyway.
                declined = mw.routes_by_model and mw.declines(self.model)
                account = None if declined else await self._resolve()
            except OpenAIError as err:
                await self.send_error(err)
                return
            target = self._target(account)
            if target is None:
                await self._release()  # before the host runs: it is not our request
                await mw.app(self.scope, self._replay_receive(), self.send)
                return
            await self._serve(target)
        finally:
            await self._release()

    async def _release(self) -> None:
        """Give the lease back; when `release()` returns an awaitable (a shared pool telling its
        store), wait for it, shielded and bounded, so that neither a disconnect nor a shutdown
        leaves the slot held until it expires."""
        lease, self.lease = self.lease, None
        if lease is not None:
            result = lease.release()
            if result is not None and inspect.isawaitable(result):
                with anyio.move_on_after(_RELEASE_WAIT, shield=True):
                    await result

    async def _read_body(self, headers: Any) -> bytes | None:
        cap = self.mw.max_body_size
        if _declared_too_large(headers, cap):  # refused before a byte is read
            raise _too_large(cap)
        parts: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            self.messages.append(message)
            if message["type"] != "http.request":
                self.disconnected = True
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                raise _too_large(cap)
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)  # one part: that part itself, not a copy

    def _replay_receive(self) -> Receive:
        return replay(self.messages, self.receive)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers, names lower-cased; built on first use (a request that passes
        through with no resolver to show them to never pays for it)."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope.get("headers", ())}
        return self._headers

    async def _resolve(self) -> Account | None:
        """Ask the resolver (again, after a failover, without the accounts already tried)."""
        resolver = self.mw.resolver
        if resolver is None:
            return None
        request = RouteRequest(self.route, self.model, self.body, self.headers, self.scope, self.tried)
        result = resolver(request)
        if result is None:  # the usual answer for a request that is not MiMo's: skip the slow check below
            return None
        if inspect.isawaitable(result):
            result = await result
        if result is None or isinstance(result, Account):
            return result
        self.lease = result
        return result.account

    def _target(self, account: Account | None) -> Account | None:
        """Account-level route first, then the model-name route."""
        if account is not None and account.is_mimo:
            return account
        if self.mw.env_account is not None and _models.is_mimo_model(self.model):
            return self.mw.env_account
        return None

    async def _serve(self, target: Account) -> None:
        from ._relay import relay_chat, relay_responses

        relay = relay_responses if self.route == "responses" else relay_chat
        mw = self.mw
        if mw.active_streams >= mw.max_streams:
            await self.send_error(OpenAIError(503, "Too many MiMo requests in flight; retry shortly.",
                                              type="server_error", code="overloaded", headers={"retry-after": "1"}))
            return
        self._commit_lock, self._committed, self._held = anyio.Lock(), anyio.Event(), []
        self.messages = []  # answered here: never replayed to the host
        mw.active_streams += 1
        if mw.metrics is not None:
            mw.metrics.in_flight.inc()
        try:
            _decode.check_limits(self.body, mw.max_items, mw.max_depth)
            if self.route == "responses" and mw.store is not None and (
                    self.body.get("previous_response_id") or should_store(self.body)):
                self.resumed = await resume(mw.store, self.body, refresh_ttl=mw.store_ttl)
            attempt = 0
            while True:
                attempt += 1
                self.account = target
                upstream_model = target.upstream_model(self.model)
                if upstream_model is None:
                    raise OpenAIError(404, f"The model {self.model!r} has no MiMo mapping for account {target.name!r}.",
                                      param="model", code="model_not_found")
                self.upstream_model = upstream_model
                extra = {h: self.headers[h] for h in mw.forward_headers if h in self.headers}
                try:
                    await beside(partial(relay, self, target, extra), self._watch)
                    await _report(mw.resolver, target, None)
                    return
                except OpenAIError as err:
                    if self.started or self.disconnected or not _fails_over(err):
                        raise
                    await _report(mw.resolver, target, err)
                    if mw.metrics is not None:
                        mw.metrics.cooldown(target.name, err)
                    self._held.clear()  # the failed attempt's held-back events never reach the client
                    next_target = await self._next_account(target, err, attempt)
                    if next_target is None:
                        raise
                    self.failovers += 1
                    if mw.metrics is not None:
                        mw.metrics.failover(err)
                    logger.warning("mimo_asgi: account %s failed before the first byte (%s); trying %s",
                                   target.name, err.code or err.status, next_target.name)
                    target = next_target
        except OpenAIError as err:
            if not self.started:
                await self.send_error(err)
            else:  # the relays end their own streams; this is a bug guard
                logger.error("mimo_asgi: error after the response started: %s", err.code)
        except Exception:
            logger.exception("mimo_asgi: unexpected error serving a MiMo request")
            if not self.started:
                await self.send_error(OpenAIError(500, "The gateway failed to serve this request.",
                                                  type="server_error", code="internal_error"))
            else:
                raise
        finally:
            mw.active_streams -= 1
            if mw.metrics is not None:
                mw.metrics.in_flight.dec()
            self._log()

    async def _next_account(self, failed: Account, err: OpenAIError, attempt: int) -> Account | None:
        """Another account, after a jittered backoff, or None when attempts or accounts run out."""
        if attempt >= self.mw.max_attempts or self.mw.resolver is None:
            return None
        self.tried = self.tried | {failed.name}
        await self._release()
        await anyio.sleep(random.uniform(0, min(1.0, 0.05 * 2 ** attempt)))
        try:
            account = await self._resolve()
        except OpenAIError:
            return None
        if account is None or not account.is_mimo or account.name in self.tried:
            await self._release()
            return None
        return account

    async def _watch(self, cancel: anyio.CancelScope) -> None:
        """Beside the relay: cancels it as soon as the client disconnects."""
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                if not self.complete:  # servers also say so once the response is complete
                    self.disconnected = True
                    cancel.cancel()
                return

    # -- writing ----------------------------------------------------------------------

    async def send_error(self, err: OpenAIError) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items() if v.isascii()]
        await self.send_json(err.status, err.body(), headers)
        self.outcome = err.code or err.type

    async def send_json(self, status: int, obj: Any, headers: list[tuple[bytes, bytes]] = []) -> None:
        payload = _json.dumps(obj)
        self.status = status
        self.started = True
        self.ttfb = self.ttfb or time.perf_counter() - self.t0
        await self.send({"type": "http.response.start", "status": status,
                          "headers": _JSON_HEADERS + headers + [(b"content-length", str(len(payload)).encode())]})
        self.complete = True
        await self.send({"type": "http.response.body", "body": payload})

    async def emit(self, data: bytes, *, content: bool) -> None:
        """Stream bytes to the client. Until the first content they are held back, so that a
        failover can still replace this answer (see `ticker` for the bound on the wait)."""
        if self.committed:
            if data:
                await self.send_body(data)
            return
        if data:
            self._held.append(data)
        if content or self.started:
            await self.commit()

    async def commit(self) -> None:
        """Send the status line and whatever was held back; from now on there is no failover.

        Nothing reads the request body after this (the relays take what they need before), so it
        is dropped for the rest of the stream: a long history is most of an open stream's memory.
        So are the lock and the event, which only a commit still to come could need."""
        if self.committed:  # the usual case, from the ticker: skip the lock (an anyio checkpoint)
            return
        lock, committed = self._commit_lock, self._committed
        assert lock is not None and committed is not None
        try:  # uncontended, as nearly always: no checkpoint queueing the first byte behind other tasks
            lock.acquire_nowait()
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            if self.committed:  # done by another task while this one waited
                return
            if not self.started:
                self.started = True
                self.status = 200
                await self.send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            while self._held:
                held = b"".join(self._held)
                self._held.clear()
                await self.send_body(held)
            self.committed = True
            committed.set()
            del self.body
            self._commit_lock = self._committed = None
        finally:
            lock.release()

    async def end_stream(self, tail: bytes = b"") -> None:
        if not self.committed:
            await self.emit(tail, content=True)
            tail = b""
        self.complete = True
        await self.send({"type": "http.response.body", "body": tail, "more_body": False})

    async def send_body(self, data: bytes) -> None:
        """Send stream bytes now; only `commit` and a committed stream may (anything else: `emit`)."""
        self.last_sent = time.monotonic()
        if self.ttfb is None:
            self.ttfb = time.perf_counter() - self.t0
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def ticker(self, cancel: anyio.CancelScope) -> None:
        """Beside a live stream: ends the hold-back after the first-byte timeout at the latest,
        then sends an SSE comment whenever the stream has been silent for keepalive_seconds."""
        if not self.committed:
            assert self._committed is not None
            with anyio.move_on_after(self.mw.upstream.timeouts.first_byte):
                await self._committed.wait()
            await self.commit()
        interval = self.mw.keepalive_seconds
        if interval <= 0:
            return
        while True:
            idle = time.monotonic() - self.last_sent
            if idle >= interval:
                await self.send_body(KEEPALIVE)
            else:
                await anyio.sleep(interval - idle)

    # -- accounting -------------------------------------------------------------------

    def _log(self) -> None:
        duration = time.perf_counter() - self.t0
        outcome = "cancelled" if self.disconnected else (self.outcome or "completed")
        usage = _usage_numbers(self.usage)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "mimo_asgi route=%s account=%s model=%s upstream_model=%s status=%s outcome=%s ttfb_ms=%s "
                "duration_ms=%.1f input_tokens=%d cached_tokens=%d output_tokens=%d reasoning_tokens=%d",
                self.route, self.account.name if self.account else "-", _safe(self.model), _safe(self.upstream_model),
                self.status, outcome, f"{self.ttfb * 1000:.1f}" if self.ttfb is not None else "-", duration * 1000,
                usage["input_tokens"], usage["cached_tokens"], usage["output_tokens"], usage["reasoning_tokens"],
            )
        if self.mw.on_usage is None and self.mw.metrics is None:
            return
        event = UsageEvent(self.route, self.account.name if self.account else "", self.model,
                           self.upstream_model, outcome, self.status, duration, usage)
        if self.mw.metrics is not None:
            self.mw.metrics.observe(event, self.ttfb)
        if self.mw.on_usage is not None:
            try:
                self.mw.on_usage(event)
            except Exception:  # a billing hook must not break the response path
                logger.exception("mimo_asgi: on_usage hook failed")


async def beside(work: Callable[[], Awaitable[T]],
                 side: Callable[[anyio.CancelScope], Awaitable[None]]) -> T | None:
    """Run `work` with `side(cancel_scope)` in the background; `side` ends when `work` does.
    Returns what `work` returned (None if `side` cancelled it). An exception from `work` is
    raised as itself, not wrapped in an ExceptionGroup."""
    error: Exception | None = None
    result: T | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(side, tg.cancel_scope)
        try:
            result = await work()
        except Exception as exc:
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return result


class UsageEvent:
    """What the `on_usage` hook receives once per MiMo-routed request (also cancelled ones)."""

    __slots__ = ("route", "account", "model", "upstream_model", "outcome", "status", "duration", "usage")

    def __init__(self, route: str, account: str, model: str, upstream_model: str, outcome: str,
                 status: int, duration: float, usage: dict[str, int]) -> None:
        self.route, self.account, self.model, self.upstream_model = route, account, model, upstream_model
        self.outcome, self.status, self.duration, self.usage = outcome, status, duration, usage

    def __repr__(self) -> str:
        return (f"UsageEvent(route={self.route!r}, account={self.account!r}, model={self.model!r}, "
                f"outcome={self.outcome!r}, usage={self.usage!r})")


def _usage_numbers(usage: dict[str, Any] | None) -> dict[str, int]:
    u = usage or {}
    details_in = u.get("prompt_tokens_details") or {}
    details_out = u.get("completion_tokens_details") or {}
    return {
        "input_tokens": int(u.get("prompt_tokens") or 0),
        "cached_tokens": int(details_in.get("cached_tokens") or 0),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "reasoning_tokens": int(details_out.get("reasoning_tokens") or 0),
        "total_tokens": int(u.get("total_tokens") or 0),
    }


def _safe(text: str) -> str:
    """Client-chosen text made fit for one log line: no control characters, spaces or non-ASCII."""
    return "".join(c if c.isprintable() and c != " " else "_" for c in text[:64]).encode("ascii", "replace").decode()


def _fails_over(err: OpenAIError) -> bool:
    """Before the first byte: connect errors, timeouts, 429, 5xx, and an account's own 401/402/403."""
    return err.retryable or err.status in (401, 402, 403)


async def _report(resolver: Any, account: Account, err: OpenAIError | None) -> None:
    """Tell a resolver that keeps account health (AccountPool does) how the account did;
    `report` may be sync or async."""
    report = getattr(resolver, "report", None)
    if report is not None:
        result = report(account, err)
        if inspect.isawaitable(result):
            await result


def _too_large(cap: int) -> OpenAIError:
    return OpenAIError(413, f"Request body exceeds the {cap} byte limit.", code="request_too_large")
