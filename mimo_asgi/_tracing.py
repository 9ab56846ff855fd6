"""OpenTelemetry traces of MiMo exchanges in the GenAI semantic conventions (the `otel` extra).

An exchange is one CLIENT span, `chat {client model}`, from its parsed request to its last byte:
routing, every attempt, the whole answer. Each attempt on an account is an INTERNAL child,
`mimo_asgi.attempt`, ended with `error.type` when the exchange fails over from it. The span's
context reaches MiMo as a W3C `traceparent` header.

Nothing is paid unless the application has set a tracer provider: the API is never imported
here before the application imported it (no provider can be set without it). Until then `start()`
returns None after a dictionary look-up (the API not loaded) or one `get_tracer_provider()` call.
Prompts and completions are recorded only when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
asks for them on spans; keys never are.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from functools import lru_cache
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import anyio

from . import _json
from ._usage import token_counts
from ._writer import Phase, StreamWriter
from .translate.errors import OpenAIError, redact

if TYPE_CHECKING:
    from .accounts import Account


class Exchange(Protocol):
    """What tracing reads of an exchange (`_exchange.Exchange`)."""

    request: Any
    kind: str
    account: Account | None
    upstream_model: str
    gone: bool

    @property
    def served(self) -> str: ...


class Outcome(Protocol):
    """What tracing reads of how an attempt came to its end (`_relay.Outcome`)."""

    ended: str
    usage: dict[str, Any] | None
    response: dict[str, Any] | None
    response_id: str | None

logger = logging.getLogger("mimo_asgi")

PROVIDER = "xiaomi.mimo"  # gen_ai.provider.name: MiMo has no well-known value in the conventions
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CAPTURE_ON = frozenset({"true", "span_only", "span_and_event"})  # the boolean form, and the enum's span values
# The API's own way to name a provider without code (read once: an environ look-up costs 0.5 us).
_PROVIDER_NAMED = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_SPAN_NAME_MODEL = 100  # characters of the client's model in a span name
# Codex puts a turn's trace context in a WebSocket frame's client_metadata under these keys.
_FRAME_KEYS = {"traceparent": ("traceparent", "ws_request_header_traceparent"),
               "tracestate": ("tracestate", "ws_request_header_tracestate")}
_REQUEST_NUMBERS = (("temperature", "gen_ai.request.temperature", float), ("top_p", "gen_ai.request.top_p", float),
                    ("max_output_tokens", "gen_ai.request.max_tokens", int),
                    ("max_completion_tokens", "gen_ai.request.max_tokens", int),
                    ("max_tokens", "gen_ai.request.max_tokens", int))
_TOOL_CALLS = frozenset({"function_call", "custom_tool_call", "local_shell_call", "tool_search_call"})
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}

_tracer: Any = None  # the tracer, once a provider is set (it can be set only once)
_otel: Any = None  # the API's modules, bound with the tracer
_current: ContextVar[ExchangeTrace | None] = ContextVar("mimo_asgi_trace", default=None)


def start(exchange: Exchange, t0: float) -> ExchangeTrace | None:
    """The trace of an exchange now served (its span current until `finish`), or None when
    nothing is traced. `t0`: `perf_counter()` when the request arrived, where the span starts."""
    tracer = _tracer if _tracer is not None else _find_tracer()
    if tracer is None:
        return None
    try:
        trace = ExchangeTrace(tracer, exchange, t0)
        trace.enter()
    except Exception:  # tracing never breaks the answer
        logger.exception("mimo_asgi: could not start the exchange's span")
        return None
    return trace


def refused(exchange: Exchange, t0: float, err: OpenAIError) -> None:
    """A span for a MiMo-bound request refused before it was served (all accounts busy, too
    many requests in flight), ended at once with the error."""
    tracer = _tracer if _tracer is not None else _find_tracer()
    if tracer is None:
        return
    try:
        trace = ExchangeTrace(tracer, exchange, t0)
        code = error_type(err)
        trace.span.set_attributes({"error.type": code, "mimo_asgi.status_code": err.status})
        trace.span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, code))
        trace.span.end()
    except Exception:
        logger.exception("mimo_asgi: could not record a refused request's span")


def sent(headers: dict[str, str], body: Mapping[str, Any]) -> None:
    """A request to MiMo is about to go: the running exchange's trace context goes in its
    headers (and its messages on the span, when content capture is on)."""
    trace = _current.get()
    if trace is not None:
        trace.request(headers, body)


def error_type(err: OpenAIError) -> str:
    """`error.type` of an error answer: its code (ours, or MiMo's), else its status."""
    return (err.code or str(err.status))[:64]


def _find_tracer() -> Any:
    """The tracer of the provider the application set, bound once; None while there is none."""
    global _tracer, _otel
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        if not _PROVIDER_NAMED:
            return None  # nobody loaded the API: no provider can have been set
        try:
            api = importlib.import_module("opentelemetry.trace")
        except ImportError:
            return None
    provider = api.get_tracer_provider()
    if isinstance(provider, (api.ProxyTracerProvider, api.NoOpTracerProvider)):
        return None
    from opentelemetry import context, propagate

    from . import __version__

    _otel = SimpleNamespace(trace=api, context=context, propagate=propagate)
    _tracer = provider.get_tracer("mimo_asgi", __version__)
    return _tracer


class ExchangeTrace:
    """One exchange's span, the span of the attempt running, and the context to restore."""

    __slots__ = ("span", "_t0", "_start_ns", "_attempt", "_attempts", "_keys", "_capture", "_token", "_own")

    def __init__(self, tracer: Any, exchange: Exchange, t0: float) -> None:
        request, trace = exchange.request, _otel.trace
        self._t0 = t0
        self._start_ns = time.time_ns() - int((time.perf_counter() - t0) * 1e9)
        parent, links = _parent(request)
        attributes = _request_attributes(request.body, request.model, exchange.account)
        self.span = tracer.start_span(f"chat {request.model[:_SPAN_NAME_MODEL]}", context=parent,
                                      kind=trace.SpanKind.CLIENT, attributes=attributes,
                                      start_time=self._start_ns, links=links)
        self._attempt: Any = None  # the attempt's span, and its context token
        self._attempts = 0
        self._keys: tuple[str, ...] = ()  # the keys of the accounts tried, kept out of what is recorded
        self._capture = os.environ.get(CAPTURE_ENV, "").strip().lower() in _CAPTURE_ON
        self._token: Any = None  # the context to restore once the span ends
        self._own: Token[ExchangeTrace | None] | None = None

    def enter(self) -> None:
        """Make the span current in this task: what the exchange does next nests under it."""
        self._token = _otel.context.attach(_otel.trace.set_span_in_context(self.span))
        self._own = _current.set(self)

    def attempt(self, account: Account, upstream_model: str, number: int) -> None:
        """An attempt on `account` begins: its span is current until it is left or the exchange ends."""
        self._end_attempt(None, None)  # none is open: each failed one was left
        try:
            self._attempts = number
            self._keys = (*self._keys, account.key)
            span = _tracer.start_span("mimo_asgi.attempt", kind=_otel.trace.SpanKind.INTERNAL, attributes={
                "mimo_asgi.account": account.name, "mimo_asgi.attempt": number,
                "mimo_asgi.upstream_model": upstream_model, **dict(_server(account.chat_url))})
            self._attempt = (span, _otel.context.attach(_otel.trace.set_span_in_context(span)))
        except Exception:
            logger.exception("mimo_asgi: could not start an attempt's span")

    def left(self, err: OpenAIError) -> None:
        """The attempt failed before the answer started and the exchange moves on: why, on its span."""
        self._end_attempt(error_type(err), err.status)

    def request(self, headers: dict[str, str], body: Mapping[str, Any]) -> None:
        try:
            _otel.propagate.inject(headers)
            if self._capture and self.span.is_recording():
                messages = body.get("messages")
                if isinstance(messages, list):
                    self.span.set_attribute("gen_ai.input.messages", self._text(_input_messages(messages)))
        except Exception:
            logger.exception("mimo_asgi: could not propagate the trace context to MiMo")

    def finish(self, exchange: Exchange, writer: StreamWriter, outcome: Outcome) -> None:
        """End the attempt's span and the exchange's with how the exchange ended; restore the context."""
        span = self.span
        try:
            error = _error_of(exchange, writer, outcome)
            if span.is_recording():
                span.set_attributes(self._outcome_attributes(exchange, writer, outcome, error))
                if writer.first_sent is not None:
                    ttfb = writer.first_sent - self._t0
                    span.add_event("mimo_asgi.first_byte", {"mimo_asgi.ttfb_ms": round(ttfb * 1000, 3)},
                                   timestamp=self._start_ns + int(ttfb * 1e9))
                if self._capture and isinstance(outcome.response, dict):
                    reasons = _finish_reasons(exchange.kind, outcome, error)
                    span.set_attribute("gen_ai.output.messages", self._text(
                        _output_messages(outcome.response, reasons[0] if reasons else None)))
            self._end_attempt(error, writer.status if error and writer.status >= 400 else None)
            if error:
                span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, error))
        except Exception:
            logger.exception("mimo_asgi: could not record the exchange's span")
        finally:
            span.end()
            self._end_attempt(None, None)  # an attempt still open after a failure above
            if self._own is not None:
                _current.reset(self._own)
                _otel.context.detach(self._token)
                self._own = self._token = None

    def _end_attempt(self, error: str | None, status: int | None) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is None:
            return
        span, token = attempt
        try:
            if error:
                span.set_attribute("error.type", error)
                if status:
                    span.set_attribute("mimo_asgi.status_code", status)
                span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, error))
        finally:
            span.end()
            _otel.context.detach(token)

    def _outcome_attributes(self, exchange: Exchange, writer: StreamWriter, outcome: Outcome,
                            error: str | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {"mimo_asgi.route": exchange.served,
                                      "mimo_asgi.attempts": self._attempts}
        if writer.status:
            attributes["mimo_asgi.status_code"] = writer.status
        account = exchange.account
        if account is not None:
            attributes["mimo_asgi.account"] = account.name
            attributes.update(_server(account.chat_url))  # the account that answered
        if exchange.upstream_model:
            attributes["gen_ai.response.model"] = exchange.upstream_model
        response = outcome.response
        if outcome.response_id:
            attributes["gen_ai.response.id"] = outcome.response_id
        elif isinstance(response, dict) and isinstance(response.get("id"), str):
            attributes["gen_ai.response.id"] = response["id"]
        if outcome.usage is not None:
            counts = token_counts(outcome.usage)
            attributes.update({"gen_ai.usage.input_tokens": counts["input_tokens"],
                               "gen_ai.usage.cache_read.input_tokens": counts["cached_tokens"],
                               "gen_ai.usage.output_tokens": counts["output_tokens"],
                               "gen_ai.usage.reasoning.output_tokens": counts["reasoning_tokens"]})
        reasons = _finish_reasons(exchange.kind, outcome, error)
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        if error:
            attributes["error.type"] = error
        return attributes

    def _text(self, messages: list[dict[str, Any]]) -> str:
        """Captured messages as the JSON string spans hold, any account key in them redacted."""
        return redact(_json.dumps_str(messages), self._keys)


def _parent(request: Any) -> tuple[Any, Any]:
    """The context the exchange's span continues, and the links it carries.

    A WebSocket frame's own trace context comes first (it names the client's turn; the
    connection's span, if any, is linked). Otherwise the current span (the ASGI server's, when
    the server is instrumented), else the request's (or WebSocket handshake's) `traceparent`."""
    trace, current = _otel.trace, _otel.trace.get_current_span().get_span_context()
    if request.scope.get("type") == "websocket":
        carrier = _frame_carrier(request.body.get("client_metadata"))
        if carrier is not None:
            context = _otel.propagate.extract(carrier)
            if trace.get_current_span(context).get_span_context().is_valid:
                return context, [trace.Link(current)] if current.is_valid else None
    if current.is_valid:
        return None, None
    return _otel.propagate.extract(request.headers), None


def _frame_carrier(metadata: Any) -> dict[str, str] | None:
    if not isinstance(metadata, dict):
        return None
    carrier = {}
    for header, keys in _FRAME_KEYS.items():
        value = next((metadata[k] for k in keys if isinstance(metadata.get(k), str)), None)
        if value is not None:
            carrier[header] = value
    return carrier if "traceparent" in carrier else None


def _request_attributes(body: Mapping[str, Any], model: str, account: Account | None) -> dict[str, Any]:
    """What is known when the exchange starts (what samplers see): never text from the body."""
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": PROVIDER,
                                  "gen_ai.request.model": model}
    if account is not None:
        attributes.update(_server(account.chat_url))
    if body.get("stream") is True:
        attributes["gen_ai.request.stream"] = True
    for name, attribute, kind in _REQUEST_NUMBERS:
        value = body.get(name)
        if isinstance(value, kind if kind is int else (int, float)) and not isinstance(value, bool) \
                and attribute not in attributes:
            attributes[attribute] = kind(value)
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        attributes["gen_ai.request.previous_response.id"] = previous
    return attributes


@lru_cache(maxsize=256)
def _server(url: str) -> tuple[tuple[str, Any], ...]:
    """`server.address` and `server.port` of an account's chat URL."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if parts.scheme == "https" else 80)
    return (("server.address", parts.hostname or ""), ("server.port", port))


def _error_of(exchange: Exchange, writer: StreamWriter, outcome: Outcome) -> str | None:
    """`error.type` of a finished exchange, or None when it answered in full."""
    if exchange.gone:
        return "cancelled"
    if outcome.ended == "failed":  # a stream that failed after it started (or its non-stream answer)
        error = outcome.response.get("error") if isinstance(outcome.response, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        return code[:64] if isinstance(code, str) and code else "failed"
    if writer.status >= 400:
        return (outcome.ended or str(writer.status))[:64]  # an error answer: its code
    if writer.phase is not Phase.DONE:  # the exchange was ended from outside (a shutdown) or crashed
        exc = sys.exc_info()[1]
        if exc is None:
            return "_OTHER"
        return "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else type(exc).__qualname__
    return None


def _finish_reasons(kind: str, outcome: Outcome, error: str | None) -> tuple[str, ...] | None:
    """One finish reason (MiMo answers one choice): chat's own, or read off the Responses object."""
    if error:
        return ("error",)
    if kind == "chat":
        return (outcome.ended,) if outcome.ended else None
    response = outcome.response
    if not isinstance(response, dict):
        return None
    status = response.get("status")
    if status == "completed":
        output = response.get("output")
        calls = isinstance(output, list) and any(isinstance(i, dict) and i.get("type") in _TOOL_CALLS for i in output)
        return ("tool_calls",) if calls else ("stop",)
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return (_INCOMPLETE.get(reason, "length") if isinstance(reason, str) else "length",)
    return None


def _input_messages(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """MiMo's chat messages in the conventions' input-messages shape (role, parts)."""
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        parts: list[dict[str, Any]] = []
        if isinstance(message.get("reasoning_content"), str):
            parts.append({"type": "reasoning", "content": message["reasoning_content"]})
        if role == "tool":
            parts.append({"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content})
        elif isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            parts += [{"type": "text", "content": p.get("text")} if p.get("type") == "text" else {"type": p.get("type")}
                      for p in content if isinstance(p, dict)]
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                parts.append({"type": "tool_call", "id": call.get("id"), "name": function.get("name"),
                              "arguments": _arguments(function.get("arguments"))})
        out.append({"role": role, "parts": parts})
    return out


def _output_messages(response: Mapping[str, Any], finish_reason: str | None) -> list[dict[str, Any]]:
    """A Responses object's output as the conventions' one output message (sealed blobs left out)."""
    parts: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            parts += [{"type": "text", "content": c.get("text")} for c in item.get("content") or ()
                      if isinstance(c, dict) and c.get("type") == "output_text"]
        elif kind == "reasoning":
            text = "".join(s.get("text", "") for s in item.get("summary") or () if isinstance(s, dict))
            parts.append({"type": "reasoning", "content": text})
        elif kind in _TOOL_CALLS:
            arguments = item.get("arguments", item.get("input", item.get("action")))
            parts.append({"type": "tool_call", "id": item.get("call_id"), "name": item.get("name", kind),
                          "arguments": _arguments(arguments)})
    return [{"role": "assistant", "parts": parts, "finish_reason": finish_reason or "error"}]


def _arguments(value: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON string of one."""
    if isinstance(value, str):
        try:
            return _json.loads(value)
        except _json.JSONDecodeError:
            return value
    return value
