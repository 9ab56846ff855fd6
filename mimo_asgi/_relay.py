"""Driving a translation: MiMo's SSE in, the client's protocol out, one terminal guaranteed."""

from __future__ import annotations

import inspect
import logging
import secrets
import time
from functools import partial
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import httpx

from . import _json
from ._responder import beside
from ._sse import _LF, SSEDecoder, SSEError, SSEEvent, encode_events
from ._upstream import read_capped
from .accounts import Account
from .search import SearchOutcome, citations_for, web_search_call_item
from .store import StoredResponse, StoreUnavailable, should_store
from .translate import errors
from .translate.chat import chat_request_from_chat
from .translate.chat_stream import ChatStream, chat_completion_for_client
from .translate.errors import OpenAIError
from .translate.responses_request import ResponsesTranslation, chat_request_from_responses
from .translate.responses_stream import ResponsesStream

if TYPE_CHECKING:
    from ._responder import MimoRequest

logger = logging.getLogger("mimo_asgi")


class _Machine(Protocol):
    """A stream translator seen as bytes: ChatStream, or ResponsesStream through _EncodedEvents."""

    done: bool
    emitted_content: bool

    def feed(self, chunk: dict[str, Any]) -> bytes: ...
    def forward(self, raw: bytes) -> bytes | None: ...
    def finish(self, *, saw_done: bool) -> bytes: ...
    def fail(self, error: OpenAIError) -> bytes: ...


class _EncodedEvents:
    """ResponsesStream with its events SSE-encoded (or dropped, for non-stream clients)."""

    __slots__ = ("stream", "_encode")

    def __init__(self, stream: ResponsesStream, *, encode: bool) -> None:
        self.stream = stream
        self._encode = encode

    @property
    def done(self) -> bool:
        return self.stream.done

    @property
    def emitted_content(self) -> bool:
        return self.stream.emitted_content

    def _out(self, events: list[dict[str, Any]]) -> bytes:
        return encode_events(events) if self._encode else b""

    def start(self) -> bytes:
        return self._out(self.stream.start())

    def feed(self, chunk: dict[str, Any]) -> bytes:
        return self._out(self.stream.feed(chunk))

    def forward(self, raw: bytes) -> bytes | None:
        out = self.stream.forward(raw)
        return out if out is None or self._encode else b""

    def finish(self, *, saw_done: bool) -> bytes:
        return self._out(self.stream.finish(saw_done=saw_done))

    def fail(self, error: OpenAIError) -> bytes:
        return self._out(self.stream.fail(error))


async def _pump(req: MimoRequest, response: httpx.Response, machine: _Machine, secrets: tuple[str, ...]) -> bytes:
    """Feed every upstream SSE chunk to `machine`, emitting its output; returns the terminal
    bytes (not yet sent). Whatever MiMo does, exactly one terminal comes out — except that an
    in-band error before any content is raised instead, so the request can fail over; an
    unexpected translation error still ends the stream with a failure terminal.

    What one upstream read yields goes out as one write: a burst of events costs the client
    socket one send, as it would through a byte relay, and waits for nothing that has not arrived.
    Whole plain delta events are answered from their bytes by `machine.forward` (see
    translate/_plain.py); the decoder and `feed` get the rest. MiMo's usual read, one event
    (maybe followed by the start of the next, kept in `held` while the decoder holds nothing),
    goes straight to `forward`; anything else through `decoder.offer`, then `feed`."""
    out: list[bytes] = []
    saw_done = False
    loads = _json.loads
    forward = machine.forward  # the parse-free path for a whole read (see translate/_plain.py)

    def take(events: list[SSEEvent]) -> bool:
        """Translate one read's events into `out`; True once the stream is over."""
        nonlocal saw_done
        for event in events:
            data = event.data
            if data == "[DONE]":
                saw_done = True
                return True
            chunk = loads(data)
            # The cheap test first: `emitted_content` is a property.
            if isinstance(chunk, dict) and "error" in chunk and not machine.emitted_content and not req.started:
                raise errors.from_stream_error(chunk, secrets=secrets)
            part = machine.feed(chunk)
            if part:
                out.append(part)
            if machine.done:
                return True
        return False

    try:
        decoder = SSEDecoder()
        chunks = response.aiter_bytes()
        idle = True  # the decoder holds nothing: a read may be one whole plain event
        held = b""  # while idle, the start of the next event's line (a read cut mid-event)
        send, monotonic = req.send, time.monotonic
        try:
            async for raw in chunks:
                data = None
                if idle:  # one whole event, maybe followed by the start of the next one's line
                    if held:
                        raw, held = held + raw, b""
                    end = raw.find(b"\n") + 2  # one byte: memchr
                    if end == len(raw):
                        data = forward(raw)
                    elif 1 < end < len(raw) and raw[end - 1] == _LF and raw.find(b"\n", end) < 0 \
                            and raw.find(b"\r", end) < 0:
                        data = forward(raw[:end])
                        if data is not None:
                            held = raw[end:]
                if data is None:
                    raw = decoder.offer(raw, forward, out)
                    if raw and take(decoder.feed(raw)):
                        if saw_done:
                            await _drain(chunks)
                        break
                    idle = decoder.idle()
                    if not out:
                        continue
                    data = out[0] if len(out) == 1 else b"".join(out)
                    out.clear()
                elif not data:
                    continue
                if req.committed and req.ttfb is not None:  # what emit() would do, inlined: per read
                    req.last_sent = monotonic()
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                else:
                    await req.emit(data, content=machine.emitted_content)
            else:
                if held:
                    decoder.feed(held)  # held, as the decoder would have: an unended last line
                take(decoder.close())
        except _json.JSONDecodeError:
            return _joined(out, machine.fail(errors.stream_truncated("MiMo sent a line that is not JSON")))
        except SSEError:
            return _joined(out, machine.fail(errors.stream_truncated("MiMo sent an oversize event")))
        except httpx.TimeoutException:
            timeout = req.mw.upstream.timeouts.idle
            return _joined(out, machine.fail(errors.upstream_timeout(f"MiMo was silent for {timeout:g}s")))
        except httpx.HTTPError as exc:
            return _joined(out, machine.fail(errors.stream_truncated(type(exc).__name__)))
        return _joined(out, b"" if machine.done else machine.finish(saw_done=saw_done))
    except OpenAIError:
        raise
    except Exception:
        logger.exception("mimo_asgi: translating the stream failed")
        return _joined(out, machine.fail(OpenAIError(500, "The gateway failed while translating the stream.",
                                                     type="server_error", code="translation_error")))


def _joined(parts: list[bytes], tail: bytes) -> bytes:
    """The output of the last read not yet sent, then the terminal."""
    return b"".join((*parts, tail)) if parts else tail


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the body's end after `[DONE]` (briefly, boundedly): a response closed unread loses its
    connection, and every MiMo request would then pay a new TCP and TLS handshake."""
    size = 0
    with anyio.move_on_after(0.05):
        async for rest in chunks:
            size += len(rest)
            if size > 65536:
                return


async def _drive(req: MimoRequest, response: httpx.Response, machine: _Machine, account: Account, *,
                 live: bool) -> bytes:
    """The pump, with the ticker beside it for live streams."""
    pump = partial(_pump, req, response, machine, (account.key,))
    return (await beside(pump, req.ticker) or b"") if live else await pump()


def _responses_translation(req: MimoRequest, account: Account) -> ResponsesTranslation:
    """The MiMo request for a Responses request (in its own frame: no local keeps the client's
    body alive once the stream has committed and `req` has dropped it)."""
    mw = req.mw
    body = req.body
    if req.resumed is not None:  # the conversation so far comes from the store
        body = {**body, "input": req.resumed.input, "previous_response_id": None}
    translation = chat_request_from_responses(
        body, upstream_model=req.upstream_model, sealer=mw.sealer,
        native_web_search=account.allows_native_web_search, drop_unsupported_tools=mw.drop_unsupported_tools,
    )
    for warning in translation.warnings:
        logger.warning("mimo_asgi: %s", warning)
    return translation


async def relay_responses(req: MimoRequest, account: Account, extra_headers: dict[str, str]) -> None:
    mw = req.mw
    translation = _responses_translation(req, account)
    searched = await _search(req, translation)
    stream = ResponsesStream(
        req.body, response_id="resp_" + secrets.token_hex(24), model=req.model, tool_map=translation.tool_map,
        sealer=mw.sealer, include_encrypted=translation.include_encrypted, created_at=int(time.time()),
        secrets=(account.key,),
        web_search=web_search_call_item(searched, "ws_" + secrets.token_hex(24)) if searched else None,
        cite=partial(citations_for, results=searched.results) if searched and searched.results else None,
    )
    live = req.body.get("stream") is True
    store = req.resumed is not None and should_store(req.body)  # read now: see MimoRequest.commit
    machine = _EncodedEvents(stream, encode=live)
    try:
        async with mw.upstream.post(account, translation.body, extra_headers) as response:
            await req.emit(machine.start(), content=False)
            tail = await _drive(req, response, machine, account, live=live)
    finally:
        req.usage = stream.usage
    final = stream.response
    req.outcome = final.get("status", "")
    if store:
        await _store(req, account, final)  # before the terminal: the client's next turn may follow at once
    if live:
        await req.end_stream(tail)
    elif final.get("status") == "failed":
        error = final.get("error") or {}
        await req.send_error(OpenAIError(502, error.get("message", "MiMo failed"), type="upstream_error",
                                         code=error.get("code")))
    else:
        await req.send_json(200, final)


async def _search(req: MimoRequest, translation: Any) -> SearchOutcome | None:
    """Auto web search for an account without MiMo's plugin: results go into the system message
    of `translation.body` (never a crash: a failed search becomes a note there)."""
    if translation.web_search is None or req.mw.web_search is None:
        return None
    return await req.mw.web_search.augment(translation.body, translation.web_search)


async def _store(req: MimoRequest, account: Account, final: dict[str, Any]) -> None:
    """Keep the response for `previous_response_id` and retrieval, with every reasoning item
    sealed (whatever the client's `include`) so a continued conversation restores it."""
    mw = req.mw
    assert mw.store is not None and req.resumed is not None
    output = [_sealed(item, mw.sealer) for item in final.get("output", ())]
    record = StoredResponse.from_response({**final, "output": output}, req.resumed.own_items, account=account.name)
    try:
        await mw.store.put(record, mw.store_ttl)
    except StoreUnavailable:
        logger.warning("mimo_asgi: the response store is unavailable; %s was not stored", final.get("id"))
        return
    remember = getattr(mw.resolver, "remember", None)
    if remember is not None:  # the next turn of this chain prefers the same account
        result = remember("prev:" + record.id, account.name)
        if inspect.isawaitable(result):
            await result


def _sealed(item: dict[str, Any], sealer: Any) -> dict[str, Any]:
    if item.get("type") != "reasoning" or item.get("encrypted_content"):
        return item
    text = "".join(part.get("text", "") for part in item.get("summary", ()) if isinstance(part, dict))
    return {**item, "encrypted_content": sealer.seal(text)} if text else item


async def relay_chat(req: MimoRequest, account: Account, extra_headers: dict[str, str]) -> None:
    mw = req.mw
    translation = chat_request_from_chat(req.body, upstream_model=req.upstream_model,
                                         native_web_search=account.allows_native_web_search)
    for warning in translation.warnings:
        logger.warning("mimo_asgi: %s", warning)
    await _search(req, translation)
    live = translation.body.get("stream") is True
    async with mw.upstream.post(account, translation.body, extra_headers) as response:
        if not live:
            raw = await read_capped(response, mw.upstream.max_response_bytes)
            try:
                completion = _json.loads(raw)
            except _json.JSONDecodeError:
                raise OpenAIError(502, "MiMo answered with a body that is not JSON.", type="upstream_error",
                                  code="bad_upstream_response") from None
            if not isinstance(completion, dict) or "error" in completion:
                raise errors.from_stream_error(completion, secrets=(account.key,))
            req.usage = completion.get("usage")
            await req.send_json(200, chat_completion_for_client(completion, model=req.model, secrets=(account.key,)))
            return
        machine = ChatStream(model=req.model, include_usage=translation.include_usage, secrets=(account.key,))
        try:
            tail = await _drive(req, response, machine, account, live=True)
        finally:
            req.usage = machine.usage
    req.outcome = machine.finish_reason or "failed"
    await req.end_stream(tail)
