"""Server-sent events, sans-IO: a bytes-in decoder and the encoders for what we send.

The decoder follows the WHATWG rules (UTF-8 with replacement, one leading BOM, CRLF / LF /
lone CR line ends, comments, `data:` with or without a space, multi-line data) and, like
LLM clients, also dispatches a last event that lacks its final blank line at `close()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import _json

_BOM = b"\xef\xbb\xbf"
_COLON = 0x3A
_CR, _LF = 0x0D, 0x0A  # `int in bytes` is a plain memchr: several times faster than `b"\r" in`

DONE: bytes = b"data: [DONE]\n\n"
KEEPALIVE: bytes = b": keep-alive\n\n"


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str = "message"


class SSEError(Exception):
    """A line or an event larger than the decoder's cap (a broken or hostile stream)."""


class SSEDecoder:
    """Feed bytes as they arrive, at any chunk boundary; get back the complete events.

    The result does not depend on how the stream was split into chunks.
    """

    __slots__ = ("_max", "_tail", "_tail_len", "_bom_pending", "_skip_lf", "_data", "_size", "_event")

    def __init__(self, *, max_event_bytes: int = 8 * 1024 * 1024) -> None:
        self._max = max_event_bytes
        self._tail: list[bytes] = []  # bytes after the last line end seen (never a CR)
        self._tail_len = 0
        self._bom_pending = True
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF completes a CRLF
        self._data: list[bytes] = []
        self._size = 0
        self._event: str | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        # Fast path for MiMo's usual read: the rest of one `data: ` line (its start may be held
        # from the last read), one blank line, then maybe the start of the next line; no CR, no
        # other field, nothing pending. It exists because the general path costs more per chunk
        # than parsing the JSON, and gives what that path would (a `data: ` line holds no BOM).
        if not self._skip_lf and not self._data and self._event is None and _CR not in data:
            end = data.find(b"\n")
            if end >= 0 and data.rfind(b"\n") == end + 1:  # exactly one line end, then the blank line
                tail = self._tail
                line = b"".join((*tail, data[:end])) if tail else data[:end]
                if line[:6] == b"data: ":
                    self._bom_pending = False
                    if tail:
                        tail.clear()
                        self._tail_len = 0
                    if end + 2 < len(data):
                        self._hold(data[end + 2:])
                    if len(line) - 5 > self._max:  # len(value) + 1, as `_lines` counts it
                        raise SSEError(f"SSE event larger than {self._max} bytes")
                    return [SSEEvent(line[6:].decode("utf-8", "replace"))]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if not data:
            return []
        if _LF not in data and _CR not in data:
            return self._hold(data)  # a long line arriving in pieces: no quadratic re-joining
        tail = self._tail
        buf = b"".join((*tail, data)) if tail else data
        tail.clear()
        self._tail_len = 0
        if self._bom_pending:
            self._bom_pending = False
            if buf.startswith(_BOM):
                buf = buf[3:]
        if _CR in buf:
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        last = lines.pop()
        if last:
            self._hold(last)
        return self._lines(lines)

    def whole(self, data: bytes, answer: Callable[[bytes], bytes | None]) -> bytes | None:
        """MiMo's usual read, without decoding: when the held bytes and `data` are one whole event
        of one line, maybe followed by the start of the next line, and `answer(event)` answers
        that event (not None): its answer, the start of the next line held. Otherwise None, and
        nothing changed (then `split`, or `feed`)."""
        if self._data or self._event is not None or self._skip_lf or _CR in data:
            return None
        tail = self._tail
        if tail:
            data = b"".join((*tail, data))
        end = data.find(b"\n") + 2  # one byte: memchr
        size = len(data)
        if end == size:
            if data[-1] != _LF or (out := answer(data)) is None:
                return None
            if tail:
                tail.clear()
                self._tail_len = 0
            return out
        if end < 2 or end > size or data[end - 1] != _LF or data.find(b"\n", end) >= 0 \
                or (out := answer(data[:end])) is None:
            return None
        tail.clear()
        self._tail_len = 0
        self._hold(data[end:])
        return out

    def split(self, data: bytes) -> tuple[bytes, Iterator[bytes]]:
        """The held bytes and `data` as one, and the whole events at its start, each as its raw
        bytes (`...\n\n`), cut one by one as they are asked for: a consumer that stops at an event
        gives that event and the rest (the bytes after those it took) to `feed`, which holds what
        is unfinished. Events are cut here only where bytes alone tell them apart: the decoder
        holds no more than the start of a line outside any event, and there is no CR; otherwise
        nothing is cut."""
        if self._data or self._event is not None or self._skip_lf or _CR in data:
            return data, iter(())
        tail = self._tail
        if tail:
            data = b"".join((*tail, data))
            tail.clear()
            self._tail_len = 0
        return data, _frames(data)

    def _hold(self, part: bytes) -> list[SSEEvent]:
        self._tail.append(part)
        self._tail_len += len(part)
        if self._tail_len > self._max:
            raise SSEError(f"SSE line longer than {self._max} bytes")
        return []

    def close(self) -> list[SSEEvent]:
        """End of stream: an unterminated last line and a pending event with data are dispatched."""
        tail = b"".join(self._tail)
        self._tail, self._tail_len = [], 0
        if self._bom_pending and tail.startswith(_BOM):
            tail = tail[3:]
        self._bom_pending = False
        self._skip_lf = False
        events = self._lines([tail, b""] if tail else [b""])
        self._data, self._size, self._event = [], 0, None
        return events

    def _lines(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(self._dispatch())
                    data = self._data
                else:
                    self._event = None
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                if value[:1] == b" ":
                    value = value[1:]
            elif line[0] == _COLON:
                continue
            else:
                name, sep, value = line.partition(b":")
                if sep and value[:1] == b" ":
                    value = value[1:]
                if name == b"event":
                    self._event = value.decode("utf-8", "replace")
                    continue
                if name != b"data":
                    continue  # id, retry and unknown fields do not matter to us
            self._size += len(value) + 1
            if self._size > self._max:
                raise SSEError(f"SSE event larger than {self._max} bytes")
            data.append(value)
        return events

    def _dispatch(self) -> SSEEvent:
        data = self._data
        raw = data[0] if len(data) == 1 else b"\n".join(data)
        event = SSEEvent(raw.decode("utf-8", "replace"), self._event or "message")
        self._data, self._size, self._event = [], 0, None
        return event


def encode_event(event: dict) -> bytes:
    """`event: <type>` + one compact JSON data line + blank line, for a Responses event."""
    return b"event: %b\ndata: %b\n\n" % (event["type"].encode(), _json.dumps(event))


def encode_events(events: list[dict]) -> bytes:
    """`encode_event` of each event, concatenated (b"" for none)."""
    if len(events) == 1:  # most chunks make one event: no list to build and join
        return encode_event(events[0])
    return b"".join([encode_event(e) for e in events])


def encode_data(obj: dict) -> bytes:
    """One compact JSON data line + blank line (Chat Completions chunks, error objects)."""
    return b"data: %b\n\n" % _json.dumps(obj)


def payloads(encoded: bytes) -> list[bytes]:
    """The data of each event in bytes made by `encode_event` (or by the stream translators'
    templates, which spell events the same way): one `data: ` line per event; compact JSON holds
    no line break."""
    out: list[bytes] = []
    pos, end = 0, len(encoded)
    while pos < end:
        start = encoded.find(b"data: ", pos)
        if start < 0:
            break
        stop = encoded.find(b"\n", start)
        if stop < 0:
            stop = end
        out.append(encoded[start + 6:stop])
        pos = stop + 2  # past the blank line
    return out


def _frames(data: bytes) -> Iterator[bytes]:
    size = len(data)
    pos = 0  # the next event's start
    lf = data.find(b"\n")  # one byte: memchr, unlike b"\n\n"
    while 0 <= lf < size - 1:
        line = lf + 1
        if data[line] == _LF:  # a blank line: the event ends
            yield data[pos:line + 1]
            pos = line + 1
            lf = data.find(b"\n", pos)
        else:
            lf = data.find(b"\n", line)
