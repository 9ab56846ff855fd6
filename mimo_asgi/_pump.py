"""MiMo's SSE bytes through a stream translator to a writer, one upstream read at a time.

Whatever MiMo does, exactly one terminal comes out of `pump`: the translator's, or a failure
made here for a cut, a timeout or a broken event. The one exception: an in-band error before
any content (and before the answer started) is raised, so the request can fail over.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio
import httpx

from . import _json
from ._sse import SSEDecoder, SSEError, SSEEvent, encode_events
from .translate import errors
from .translate.errors import OpenAIError
from .translate.responses_stream import ResponsesStream

logger = logging.getLogger("mimo_asgi")
_DRAIN_BYTES = 65536
_DRAIN_SECONDS = 0.05


class Machine(Protocol):
    """A stream translator seen as the client's bytes: `ChatStream`, or a Responses-event
    translator through `EncodedEvents`."""

    @property
    def done(self) -> bool: ...
    @property
    def emitted_content(self) -> bool: ...
    def feed(self, chunk: dict[str, Any]) -> bytes: ...
    def forward(self, raw: bytes) -> bytes | None: ...
    def finish(self, *, saw_done: bool) -> bytes: ...
    def fail(self, error: OpenAIError) -> bytes: ...


class Writer(Protocol):
    """What the pump needs of a writer (see `_writer.StreamWriter`)."""

    @property
    def started(self) -> bool: ...
    def write(self, data: bytes, *, content: bool) -> Awaitable[None]: ...


class EventTranslator(Protocol):
    """A translator of MiMo chunks into Responses events (`ResponsesStream`, `CompactionStream`)."""

    @property
    def done(self) -> bool: ...
    @property
    def emitted_content(self) -> bool: ...
    def start(self) -> list[dict[str, Any]]: ...
    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]: ...
    def forward(self, raw: bytes) -> bytes | None: ...
    def finish(self, *, saw_done: bool) -> list[dict[str, Any]]: ...
    def fail(self, error: OpenAIError) -> list[dict[str, Any]]: ...


class EncodedEvents:
    """A Responses-event translator with its events SSE-encoded, or dropped for a client that
    did not ask for a stream (the events still drive the final response object)."""

    __slots__ = ("stream", "_encode")

    def __init__(self, stream: EventTranslator | ResponsesStream, *, encode: bool) -> None:
        self.stream = stream
        self._encode = encode

    @property
    def done(self) -> bool:
        return self.stream.done

    @property
    def emitted_content(self) -> bool:
        return self.stream.emitted_content

    def _out(self, events: list[dict[str, Any]]) -> bytes:
        return encode_events(events) if self._encode and events else b""

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


async def pump(response: Any, machine: Machine, writer: Writer, *, secrets: Sequence[str] = (),
               idle_timeout: float = 0.0, on_skipped: Callable[[], None] | None = None) -> bytes:
    """Feed every SSE event of `response` (anything with `aiter_bytes()`) to `machine`, writing
    its output; returns the terminal bytes, not yet written.

    What one upstream read yields goes out as one write: a burst of events costs the client
    one send, as through a byte relay, and waits for nothing that has not arrived. Whole plain
    delta events are answered from their bytes by `machine.forward` (translate/_plain.py); the
    decoder and `feed` take the rest. A data line that is not JSON is skipped (logged once per
    stream, counted through `on_skipped`): the answer goes on."""
    out: list[bytes] = []
    saw_done = False
    content = False  # the answer has content: stream bytes are held back until it has
    skipped = 0  # data lines that were not JSON
    loads = _json.loads
    forward = machine.forward
    write = writer.write

    def take(events: list[SSEEvent]) -> bool:
        """Translate the events of one read into `out`; True once the stream is over."""
        nonlocal saw_done, skipped
        for event in events:
            data = event.data
            if data == "[DONE]":
                saw_done = True
                return True
            try:
                chunk = loads(data)
            except _json.JSONDecodeError:  # one broken line is not the end of an answer
                skipped += 1
                if skipped == 1:
                    logger.warning("mimo_asgi: MiMo sent a data line that is not JSON (%d characters); skipped it",
                                   len(data))
                if on_skipped is not None:
                    on_skipped()
                continue
            # The cheap tests first: `emitted_content` may be a property. `"error": null` is no error.
            if isinstance(chunk, dict) and chunk.get("error") is not None and not machine.emitted_content \
                    and not writer.started:
                raise errors.from_stream_error(chunk, secrets=secrets)
            part = machine.feed(chunk)
            if part:
                out.append(part)
            if machine.done:
                return True
        return False

    try:
        decoder = SSEDecoder()
        whole, split, feed = decoder.whole, decoder.split, decoder.feed
        chunks = response.aiter_bytes()
        try:
            async for raw in chunks:
                data = whole(raw, forward)  # MiMo's usual read: one whole plain event
                if data is None:
                    data, frames = split(raw)
                    taken = 0
                    for frame in frames:
                        part = forward(frame)
                        if part is None:  # not a plain delta: this event and those after it are decoded
                            break
                        taken += len(frame)
                        if part:
                            out.append(part)
                    rest = data[taken:] if taken else data
                    if rest and take(feed(rest)):
                        if saw_done:
                            await _drain(chunks)
                        break
                    data = out[0] if len(out) == 1 else b"".join(out)
                    out.clear()
                if data:
                    content = content or machine.emitted_content  # once true, it stays so
                    await write(data, content=content)
            else:
                take(decoder.close())
        except SSEError:
            return _joined(out, machine.fail(errors.stream_truncated("MiMo sent an oversize event")))
        except httpx.TimeoutException:
            return _joined(out, machine.fail(errors.upstream_timeout(
                f"MiMo was silent for {idle_timeout:g}s (the idle timeout)")))
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
    """The output of the last read not yet written, then the terminal."""
    return b"".join((*parts, tail)) if parts else tail


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the body's end after `[DONE]` (briefly, boundedly): a response closed unread loses its
    connection, and every MiMo request would then pay a new TCP and TLS handshake."""
    size = 0
    with anyio.move_on_after(_DRAIN_SECONDS):
        async for rest in chunks:
            size += len(rest)
            if size > _DRAIN_BYTES:
                return
