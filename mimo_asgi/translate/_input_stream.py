"""Incremental extraction of `{"input": "..."}` from streamed JSON argument fragments (pure).

Custom (freeform) tools reach MiMo as functions taking one string `input`; this lets the
raw text stream out as `custom_tool_call_input.delta` while the JSON is still arriving,
whatever the fragment boundaries (inside escapes, inside surrogate pairs).
"""

from __future__ import annotations

import json
import re

# A run of complete string characters: plain text or whole escape sequences.
_STRING_BODY = re.compile(r'(?:[^"\\]+|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
_HIGH_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONGEST_ESCAPE = 6  # \uXXXX
_WHITESPACE = " \t\r\n"
_EXPECT = {"start": "{", "key_open": '"', "colon": ":", "value_open": '"'}
_NEXT = {"start": "key_open", "key_open": "key", "colon": "value_open", "value_open": "input"}


def _decode(raw: str) -> str:
    """JSON string body -> text. The stdlib decoder is used because it tolerates lone
    surrogate escapes, which are then replaced so the text stays encodable."""
    if "\\" not in raw:
        return raw  # no escapes: the body is the text
    text = json.loads(f'"{raw}"', strict=False)
    if _SURROGATE.search(text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _is_escape_start(raw: str, pos: int) -> bool:
    """True when the backslash at pos starts an escape (is not the second half of `\\\\`)."""
    run = 0
    while pos - run - 1 >= 0 and raw[pos - run - 1] == "\\":
        run += 1
    return run % 2 == 0


class InputExtractor:
    """feed(fragment) -> newly decoded text of the `input` value ("" when none yet).

    Streams only when `input` is the first key and its value is a string; otherwise
    `started` stays False and the caller decides from the complete arguments. Once
    started, the concatenation of everything returned is the input (`text`).
    """

    __slots__ = ("_state", "_pending", "_parts")

    def __init__(self) -> None:
        self._state = "start"
        self._pending = ""
        self._parts: list[str] = []

    @property
    def started(self) -> bool:
        return self._state in ("input", "done")

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, fragment: str) -> str:
        if self._state in ("done", "failed") or not fragment:
            return ""
        buf = self._pending + fragment
        self._pending = ""
        i = self._scan_prefix(buf)
        if self._state != "input":
            return ""
        return self._stream(buf, i)

    def _scan_prefix(self, buf: str) -> int:
        """Walk `{ "input" :` up to the value's opening quote; returns the position reached."""
        i, n = 0, len(buf)
        while i < n and self._state in _EXPECT or self._state == "key":
            if self._state == "key":
                end = self._string_end(buf, i)
                if end is None:
                    return n
                self._state = "colon" if buf[i:end] == "input" else "failed"
                i = end + 1
                continue
            while i < n and buf[i] in _WHITESPACE:
                i += 1
            if i == n:
                break
            if buf[i] != _EXPECT[self._state]:
                self._state = "failed"
                return n
            self._state = _NEXT[self._state]
            i += 1
        return i

    def _string_end(self, buf: str, i: int) -> int | None:
        """Index of the closing quote of a key starting at i; None (buffered) if not yet arrived."""
        end = _STRING_BODY.match(buf, i).end()  # type: ignore[union-attr]
        if end < len(buf) and buf[end] == '"':
            return end
        if len(buf) - end >= _LONGEST_ESCAPE:
            self._state = "failed"
        else:
            self._pending = buf[i:]
        return None

    def _stream(self, buf: str, i: int) -> str:
        end = _STRING_BODY.match(buf, i).end()  # type: ignore[union-attr]
        raw = buf[i:end]
        if end < len(buf) and buf[end] == '"':
            self._state = "done"
        elif end < len(buf):
            if len(buf) - end >= _LONGEST_ESCAPE:
                self._state = "done"  # an invalid escape: keep what was valid
            else:
                self._pending = buf[end:]  # an escape cut by the fragment boundary
        if self._state == "input":
            held = _HIGH_SURROGATE_ESCAPE.search(raw)
            if held and _is_escape_start(raw, held.start()):  # wait for the low half of the pair
                self._pending = raw[held.start():] + self._pending
                raw = raw[: held.start()]
        if not raw:
            return ""
        text = _decode(raw)
        self._parts.append(text)
        return text
