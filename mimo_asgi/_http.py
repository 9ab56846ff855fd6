"""The HTTP transport: an inspected POST in; passed to the host untouched, or answered as an SSE
stream or a JSON body through the exchange."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from . import _decode
from ._exchange import Exchange, Request
from ._intake import declared_too_large, read_request, replay
from ._runtime import Runtime
from ._writer import HTTPWriter
from .translate.errors import OpenAIError


async def serve(rt: Runtime, route: str, scope: Scope, receive: Receive, send: Send) -> None:
    """An inspected request. With built-in routing (the decision needs only the model) a body
    that came in one message is skimmed for its model (the JSON validated, no objects built)
    and, when no route serves it, handed to the host without anything else: no full parse, no
    per-request object. An encoded body is not JSON as sent, so it takes the long way."""
    cap = rt.limits.max_body_size
    if rt.routes_by_model and not declared_too_large(scope.get("headers", ()), cap):
        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            if len(body) <= cap:
                model = _decode.model_of(body)
                if model is not None and rt.declines(model):
                    await rt.app(scope, replay([message], receive), send)
                    return
        receive = replay([message], receive)
    messages: list[Message] = []  # what was read, for a replay to the host
    writer = HTTPWriter(send, first_byte_timeout=rt.upstream.timeouts.first_byte,
                        keepalive_seconds=rt.keepalive_seconds)
    try:
        request = await read_request(route, scope, receive, messages, cap)
    except OpenAIError as err:
        await writer.error(err)
        return
    if request is not None:  # else the client left before its body was complete
        await _exchange(rt, request, writer, scope, receive, send, messages)


async def _exchange(rt: Runtime, request: Request, writer: HTTPWriter, scope: Scope, receive: Receive,
                    send: Send, messages: list[Message]) -> None:
    exchange = Exchange(rt, request)
    try:
        try:
            mine = await exchange.route()
        except OpenAIError as err:
            await writer.error(err)
            return
        if not mine:
            await rt.app(scope, replay(messages, receive), send)
            return
        messages.clear()  # answered here: never replayed
        del request  # the exchange holds it, and drops its body once the answer starts

        async def until_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        await exchange.run(writer, until_gone)
    finally:
        await exchange.release()
