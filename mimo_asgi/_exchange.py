"""One MiMo exchange, whatever transport brought the request: route it to an account, hold the
account's lease, fail over before the answer starts, run the relay, account for it.

A transport parses a `Request`, asks `route()` whether it is MiMo's, and if so calls `run()`
with its writer and a way to learn that its client left; `release()` (the one place a lease is
given back) runs in its `finally`.
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from . import _decode, _tracing
from ._accounting import UsageEvent, record, token_counts
from ._beside import beside
from ._relay import Job, Outcome, relay_chat, relay_compaction, relay_responses
from ._writer import Phase, StreamWriter
from .accounts import Account, RouteRequest
from .pool import account_fault
from .store import Resumed, StoreUnavailable, resume, should_store
from .translate._items import referenced, resolve_references
from .translate.compaction import wants_compaction
from .translate.errors import OpenAIError, store_unavailable
from .translate.responses_request import Continuation

if TYPE_CHECKING:
    from ._runtime import Runtime

logger = logging.getLogger("mimo_asgi")

_RELEASE_WAIT = 5.0  # seconds a shared pool may take to free a slot before it is left to expire
_RELAYS = {"responses": relay_responses, "chat": relay_chat, "compaction": relay_compaction,
           "compact": relay_compaction}


class Request:
    """A parsed request: its route ("responses", "chat", or "compact" for the older compaction
    endpoint `POST /v1/responses/compact`), body and model, and the ASGI scope it came with (HTTP,
    or a WebSocket's handshake), whose headers a resolver sees. `fresh`: what of the body arrived
    with this request, the part the caps are checked on (all of it, unless a WebSocket frame
    brought only new items to a conversation its connection already holds). A connection that
    rebuilt the conversation itself gives it as `resumed` (`chained`: a stored answer continues
    the stored chain of `previous_response_id`, else starts one), and `since`, what an earlier
    translation of the same conversation left to continue from; `continues`: the connection will
    send more of this conversation, so this translation is kept to continue from in turn."""

    __slots__ = ("route", "body", "model", "scope", "fresh", "resumed", "chained", "since", "continues", "_headers")

    def __init__(self, route: str, body: dict[str, Any], model: str, scope: Mapping[str, Any], *,
                 fresh: Any = None, resumed: Resumed | None = None, chained: bool = True,
                 since: Continuation | None = None, continues: bool = False) -> None:
        self.route = route
        self.body = body
        self.model = model
        self.scope = scope
        self.fresh = body if fresh is None else fresh
        self.resumed = resumed
        self.chained = chained
        self.since = since
        self.continues = continues
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The scope's headers, names lower-cased; made on first use (a request that passes
        through with nothing to show them to never pays for it)."""
        if self._headers is None:
            self._headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope.get("headers", ())}
        return self._headers

    def forget_headers(self) -> None:
        self._headers = None


class Result:
    """How an exchange ended: the status the client was given, how the answer ended (a
    Responses status, a finish reason, an error code, or "cancelled"), MiMo's usage, the final
    Responses object when one was made, the whole conversation it answered (its item references
    resolved), the id it was stored under, and what its translation left to continue from."""

    __slots__ = ("status", "ended", "usage", "response", "conversation", "stored", "continuation")

    def __init__(self, status: int, ended: str, usage: dict[str, Any] | None, response: dict[str, Any] | None,
                 conversation: list[Any] | None = None, stored: str | None = None,
                 continuation: Continuation | None = None) -> None:
        self.status, self.ended, self.usage, self.response = status, ended, usage, response
        self.conversation, self.stored, self.continuation = conversation, stored, continuation


class Exchange:
    __slots__ = ("rt", "request", "kind", "account", "upstream_model", "gone", "trace", "_lease", "_tried", "_t0")

    def __init__(self, rt: Runtime, request: Request) -> None:
        self.rt = rt
        self.request = request
        self.kind = request.route  # what is asked of MiMo: "responses", "chat", "compaction" or "compact"
        self.account: Account | None = None  # the account serving (or last tried)
        self.upstream_model = ""
        self.gone = False  # the client left before the answer was complete
        self._lease: Any = None
        self._tried: frozenset[str] = frozenset()  # accounts already failed over from
        self._t0 = time.perf_counter()
        self.trace: _tracing.ExchangeTrace | None = None  # its span, when OpenTelemetry traces

    @property
    def served(self) -> str:
        """What was asked of MiMo, as logs, metrics and spans name it: responses, chat or compaction."""
        return "compaction" if self.kind == "compact" else self.kind

    async def route(self) -> bool:
        """Whether the request is MiMo's: then the account that serves it is chosen and its lease
        (if the resolver gives one) held. Raises OpenAIError (e.g. the pool's 503)."""
        rt, request = self.rt, self.request
        if rt.routes_by_model and rt.declines(request.model):  # no coroutine for the usual pass-through
            return False
        try:
            account = await self._resolve()
        except OpenAIError as err:
            _tracing.refused(self, self._t0, err)  # tracing: a refused request is a span too
            raise
        self.account = rt.target(account, request.model)
        if self.account is None:
            await self.release()  # before the host runs: it is not our request
            return False
        return True

    async def release(self) -> None:
        """Give the lease back without a word on the account's health (the request was not MiMo's,
        was cancelled, or failed for its own reasons); `settle` ends an attempt that was made."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await _settled(lease.release())

    async def settle(self, account: Account, error: OpenAIError | None, *, remember: str | None = None) -> None:
        """The attempt on `account` is over: how it went reported, the conversation key
        `remember` tied to it, its lease given back, in one call (one round trip for a shared
        pool). With `release` the only places a lease ends."""
        lease, self._lease = self._lease, None
        await _settled(self.rt.hooks.finish(lease, account, error, remember=remember))

    async def run(self, writer: StreamWriter, until_gone: Callable[[], Awaitable[None]]) -> Result:
        """Serve the routed request through `writer` (its transport's), watching `until_gone`
        (returns once the client has left) to cancel the work. Every error ends as an answer."""
        rt, request = self.rt, self.request
        outcome = Outcome()
        if rt.in_flight >= rt.limits.max_streams:
            err = OpenAIError(503, "Too many MiMo requests in flight; retry shortly.", type="server_error",
                              code="overloaded", headers={"retry-after": "1"})
            await writer.error(err)
            _tracing.refused(self, self._t0, err)  # tracing: a refused request is a span too
            return Result(err.status, err.code or "", None, None)
        rt.in_flight += 1
        if rt.metrics is not None:
            rt.metrics.started()
        self.trace = _tracing.start(self, self._t0)  # tracing: None unless a tracer provider is set
        try:
            limits = rt.limits
            _decode.check_limits(request.fresh, limits.max_items, limits.max_depth)
            job = await self._job()

            def started() -> None:  # nothing reads the request after this; it may be large
                request.body = job.body = request.fresh = {}
                request.forget_headers()

            async def watch(cancel: anyio.CancelScope) -> None:
                await until_gone()
                if writer.phase is not Phase.DONE:  # servers also say so once the answer is complete
                    self.gone = True
                    cancel.cancel()

            writer.on_start = started
            await beside(partial(self._attempts, job, writer, outcome), watch)
        except OpenAIError as err:
            if not writer.started:
                await writer.error(err)
                outcome.ended = err.code or err.type
            else:  # the relays end their own streams; this is a bug guard
                logger.error("mimo_asgi: error after the response started: %s", err.code)
        except Exception:
            logger.exception("mimo_asgi: unexpected error serving a MiMo request")
            if writer.started:
                raise
            await writer.error(OpenAIError(500, "The gateway failed to serve this request.", type="server_error",
                                           code="internal_error"))
        finally:
            rt.in_flight -= 1
            if rt.metrics is not None:
                rt.metrics.ended()
            ended = "cancelled" if self.gone else (outcome.ended or "completed")
            duration = time.perf_counter() - self._t0
            ttfb = writer.first_sent - self._t0 if writer.first_sent is not None else None
            record(UsageEvent(self.served, self.account.name if self.account else "", request.model,
                              self.upstream_model, ended, writer.status, duration, token_counts(outcome.usage)),
                   ttfb, metrics=rt.metrics, on_usage=rt.on_usage)
            if self.trace is not None:
                self.trace.finish(self, writer, outcome)
        return Result(writer.status, ended, outcome.usage, outcome.response, outcome.conversation, outcome.stored,
                      outcome.continuation)

    async def _job(self) -> Job:
        rt, request = self.rt, self.request
        body = request.body
        kind = "compaction" if request.route == "responses" and wants_compaction(body) else request.route
        self.kind = kind
        resumed = request.resumed
        if resumed is None and kind in ("responses", "compaction") and rt.store is not None and (
                body.get("previous_response_id") or should_store(body)):
            resumed = await resume(rt.store, body, refresh_ttl=rt.store_ttl)
        wanted = referenced(request.fresh.get("input")) if isinstance(request.fresh, dict) else []
        if wanted:  # resolved from the conversation, else the store; written back (a connection keeps it)
            conversation = resumed.input if resumed is not None else body.get("input")
            if isinstance(conversation, list):
                resolved = resolve_references(conversation, await self._stored_items(conversation, wanted))
                if resumed is not None:
                    resumed = Resumed(resolved, resumed.own_items, resumed.parent)
                else:
                    body["input"] = resolved
        headers = request.headers if rt.forward_headers else {}
        extra = {h: headers[h] for h in rt.forward_headers if h in headers}
        return Job(kind, body, request.model, "", body.get("stream") is True, resumed, extra, request.since,
                   request.chained, request.continues)

    async def _stored_items(self, conversation: list[Any], wanted: list[str]) -> dict[str, Any]:
        """The referenced items the conversation does not hold itself, from the store."""
        store = self.rt.store
        found: dict[str, Any] = {}
        if store is None:
            return found
        held = {i.get("id") for i in conversation if isinstance(i, dict) and i.get("type") != "item_reference"}
        for item_id in dict.fromkeys(wanted):
            if item_id not in held:
                try:
                    item = await store.item(item_id)
                except StoreUnavailable:
                    raise store_unavailable() from None
                if item is not None:
                    found[item_id] = item
        return found

    async def _attempts(self, job: Job, writer: StreamWriter, outcome: Outcome) -> None:
        """The relay on the routed account, then on others while it fails before the answer started."""
        rt, model = self.rt, self.request.model
        relay = _RELAYS[job.kind]
        target = self.account
        assert target is not None
        attempt = 0
        while True:
            attempt += 1
            self.account = target
            upstream_model = target.upstream_model(model)
            if upstream_model is None:
                raise OpenAIError(404, f"The model {model!r} has no MiMo mapping for account {target.name!r}.",
                                  param="model", code="model_not_found")
            self.upstream_model = job.upstream_model = upstream_model
            if self.trace is not None:
                self.trace.attempt(target, upstream_model, attempt)
            try:
                ending = await relay(rt, job, target, writer, outcome)
            except OpenAIError as err:
                if writer.started or self.gone or not _fails_over(err):
                    raise
                if self.trace is not None:
                    self.trace.left(err)  # tracing: the attempt's span ends with why it was left
                await self.settle(target, err)
                if rt.metrics is not None:
                    rt.metrics.cooldown(target.name, err)
                writer.drop()  # the failed attempt's held-back events never reach the client
                next_target = await self._next_account(target, attempt)
                if next_target is None:
                    raise
                if rt.metrics is not None:
                    rt.metrics.failover(err)
                logger.warning("mimo_asgi: account %s failed before the first byte (%s); trying %s",
                               target.name, err.code or err.status, next_target.name)
                target = next_target
                continue
            # MiMo's answer is complete: the account is free before the client reads the end
            outcome.stored = ending.stored
            await self.settle(target, None, remember="prev:" + ending.stored if ending.stored else None)
            await ending.write(writer)
            return

    async def _next_account(self, failed: Account, attempt: int) -> Account | None:
        """Another account, after a jittered backoff, or None when attempts or accounts run out."""
        rt = self.rt
        if attempt >= rt.limits.max_attempts or rt.resolver is None:
            return None
        self._tried = self._tried | {failed.name}
        await anyio.sleep(random.uniform(0, min(1.0, 0.05 * 2 ** attempt)))
        try:
            account = await self._resolve()
        except OpenAIError:
            return None
        if account is None or not account.is_mimo or account.name in self._tried:
            await self.release()
            return None
        return account

    async def _resolve(self) -> Account | None:
        """Ask the resolver (again, after a failover, without the accounts already tried)."""
        resolver = self.rt.resolver
        if resolver is None:
            return None
        r = self.request
        route = "responses" if r.route == "compact" else r.route  # resolvers know the two APIs
        result = resolver(RouteRequest(route, r.model, r.body, r.headers, r.scope, self._tried))
        if result is None:  # the usual answer for a request that is not MiMo's: skip the slow check below
            return None
        if inspect.isawaitable(result):
            result = await result
        if result is None or isinstance(result, Account):
            return result
        self._lease = result
        return result.account


def _fails_over(err: OpenAIError) -> bool:
    """Before the first byte, on what another account may well not meet: the account's own
    401/402/403 and 429, MiMo's 5xx, timeouts and connect errors."""
    return account_fault(err) is not None


async def _settled(result: Any) -> None:
    """Wait for what a lease's release or finish returned when it is still in progress (a shared
    pool telling its store), shielded and bounded, so that neither a disconnect nor a shutdown
    leaves the slot held until it expires."""
    if result is not None and inspect.isawaitable(result):
        with anyio.move_on_after(_RELEASE_WAIT, shield=True):
            await result
