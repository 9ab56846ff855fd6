"""One place for JSON: orjson, bytes out, str or bytes in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError


loads: Callable[[bytes | bytearray | memoryview | str], Any] = orjson.loads  # no wrapper frame: once per chunk


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes (no raw newlines, safe for one SSE data line)."""
    return orjson.dumps(obj)


def dumps_kept(obj: Any) -> bytes:
    """`dumps` for bytes that are held a while (a stored response): orjson (3.12 on) hands back
    its working buffer untrimmed, at least 4 KiB and for long strings many times the JSON, so
    these are copied to their size."""
    return bytes(memoryview(orjson.dumps(obj)))


def dumps_str(obj: Any) -> str:
    return orjson.dumps(obj).decode()
