"""One inspected request: body peek and replay, the routing decision, the lease's lifetime,
response writing and disconnect watching."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import Message, Receive, Scope, Send

from . import _json, _models
from .accounts import Account, RouteRequest
from .translate import errors
from .translate.errors import OpenAIError

if TYPE_CHECKING:
    from ._middleware import MimoMiddleware

logger = logging.getLogger("mimo_asgi")

_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class MimoRequest:
    """Per-request state; the middleware itself holds none."""

    def __init__(self, mw: MimoMiddleware, route: str, scope: Scope, receive: Receive, send: Send) -> None:
        self.mw = mw
        self.route = route
        self.scope = scope
        self.receive = receive
        self._send = send
        self.messages: list[Message] = []
        self.body: dict[str, Any] = {}
        self.model = ""
        self.account: Account | None = None
        self.upstream_model = ""
        self.started = False  # response headers sent
        self.status = 0
        self.disconnected = False
        self.t0 = time.perf_counter()
        self.ttfb: float | None = None
        self.usage: dict[str, Any] | None = None
        self.outcome = ""

    # -- the request ------------------------------------------------------------------

    async def run(self) -> None:
        try:
            raw = await self._read_body()
        except OpenAIError as err:
            await self.send_error(err)
            return
        if raw is None:  # the client left before the body was complete
            return
        try:
            self.body, self.model = _parse(raw)
        except OpenAIError as err:
            await self.send_error(err)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope.get("headers", ())}
        lease: Any = None
        try:
            try:
                lease, account = await self._resolve(RouteRequest(self.route, self.model, self.body, headers, self.scope))
            except OpenAIError as err:
                await self.send_error(err)
                return
            target = self._target(account)
            if target is None:
                if lease is not None:
                    lease, held = None, lease
                    held.release()
                await self.mw.app(self.scope, self._replay_receive(), self._send)
                return
            await self._serve(target, headers)
        finally:
            if lease is not None:
                lease.release()

    async def _read_body(self) -> bytes | None:
        cap = self.mw.max_body_size
        for name, value in self.scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > cap:
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
                return b"".join(parts)

    def _replay_receive(self) -> Receive:
        """Hand the host the exact messages we read, in their original chunking, then the real stream."""
        pending = list(self.messages)

        async def receive() -> Message:
            if pending:
                return pending.pop(0)
            return await self.receive()

        return receive

    async def _resolve(self, request: RouteRequest) -> tuple[Any, Account | None]:
        resolver = self.mw.resolver
        if resolver is None:
            return None, None
        result = resolver(request)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return None, None
        if isinstance(result, Account):
            return None, result
        return result, result.account

    def _target(self, account: Account | None) -> Account | None:
        """Account-level route first, then the model-name route."""
        if account is not None and account.is_mimo:
            return account
        if self.mw.env_account is not None and _models.is_mimo_model(self.model):
            return self.mw.env_account
        return None

    async def _serve(self, target: Account, headers: dict[str, str]) -> None:
        from ._relay import relay_chat, relay_responses

        self.account = target
        upstream_model = target.upstream_model(self.model)
        if upstream_model is None:
            await self.send_error(OpenAIError(
                404, f"The model {self.model!r} has no MiMo mapping for account {target.name!r}.",
                param="model", code="model_not_found"))
            return
        self.upstream_model = upstream_model
        extra = {h: headers[h] for h in self.mw.forward_headers if h in headers}
        relay = relay_responses if self.route == "responses" else relay_chat
        try:
            await self.watching_disconnect(lambda: relay(self, target, extra))
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
            self._log()

    async def watching_disconnect(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work`, cancelling it as soon as the client disconnects."""
        error: Exception | None = None
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                while True:
                    message = await self.receive()
                    if message["type"] == "http.disconnect":
                        self.disconnected = True
                        tg.cancel_scope.cancel()
                        return

            tg.start_soon(watch)
            try:
                await work()
            except Exception as exc:  # raised as itself, not wrapped in an ExceptionGroup
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error

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
        await self._send({"type": "http.response.start", "status": status,
                          "headers": _JSON_HEADERS + headers + [(b"content-length", str(len(payload)).encode())]})
        await self._send({"type": "http.response.body", "body": payload})

    async def start_stream(self) -> None:
        self.status = 200
        self.started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})

    async def send_chunk(self, data: bytes) -> None:
        if data:
            if self.ttfb is None:
                self.ttfb = time.perf_counter() - self.t0
            await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_stream(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    # -- accounting -------------------------------------------------------------------

    def _log(self) -> None:
        duration = time.perf_counter() - self.t0
        outcome = "cancelled" if self.disconnected else (self.outcome or "completed")
        usage = _usage_numbers(self.usage)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "mimo_asgi route=%s account=%s model=%s upstream_model=%s status=%s outcome=%s ttfb_ms=%s "
                "duration_ms=%.1f input_tokens=%d cached_tokens=%d output_tokens=%d reasoning_tokens=%d",
                self.route, self.account.name if self.account else "-", _safe(self.model), self.upstream_model,
                self.status, outcome, f"{self.ttfb * 1000:.1f}" if self.ttfb is not None else "-", duration * 1000,
                usage["input_tokens"], usage["cached_tokens"], usage["output_tokens"], usage["reasoning_tokens"],
            )
        if self.mw.on_usage is not None:
            event = UsageEvent(self.route, self.account.name if self.account else "", self.model,
                               self.upstream_model, outcome, self.status, duration, usage)
            try:
                self.mw.on_usage(event)
            except Exception:  # a billing hook must not break the response path
                logger.exception("mimo_asgi: on_usage hook failed")


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
    return text[:64].encode("ascii", "replace").decode() .replace(" ", "_")


def _too_large(cap: int) -> OpenAIError:
    return OpenAIError(413, f"Request body exceeds the {cap} byte limit.", code="request_too_large")


def _parse(raw: bytes) -> tuple[dict[str, Any], str]:
    try:
        body = _json.loads(raw)
    except _json.JSONDecodeError:
        raise errors.invalid_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise errors.invalid_request("The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise errors.invalid_request("`model` must be a non-empty string.", param="model")
    return body, model
