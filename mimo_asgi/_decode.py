"""Request bodies, pure: undone from their `Content-Encoding` (zstd, gzip, deflate) under a size
cap, parsed, and checked against the nesting and item caps before any translation walks them.

Output is produced in bounded steps (zlib's `max_length`, bounded zstd reads) and decoding
stops as soon as it passes the cap, so a decompression bomb costs about twice the cap in memory
and a fraction of a second before it becomes a 413; zstd frames are also refused before decoding
when their window (memory the decoder must allocate) is larger than the cap allows.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import zstandard

from . import _json
from .translate import errors
from .translate.errors import OpenAIError

SUPPORTED = ("zstd", "gzip", "deflate")
_ALIASES = {"x-gzip": "gzip"}
_READ = 1 << 20  # decoded bytes asked of zstd per read
# zstd window the decoder may allocate: at least 8 MiB (what level 19 streams with), else the cap.
_MIN_WINDOW = 1 << 23
_MAX_WINDOW = 1 << 27  # libzstd's own default limit
_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK, _SKIPPABLE_MAGIC = 0xFFFFFFF0, 0x184D2A50


class _Corrupt(Exception):
    """The data is not valid for its coding; the message says why."""


class _TooLarge(Exception):
    """Decoded output passed the cap (or a zstd window would)."""


def content_encoding(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Every `content-encoding` header of an ASGI header list, joined with commas (None if absent)."""
    values = [v.decode("latin-1") for k, v in headers if k.lower() == b"content-encoding"]
    return ", ".join(values) if values else None


def codings(content_encoding: str | None) -> list[str]:
    """The codings in the order they were applied, lower-cased, `identity` and empty items dropped.

    Raises a 415 `OpenAIError` naming the first coding this module cannot decode.
    """
    names = [_ALIASES.get(n, n) for n in (p.strip().lower() for p in (content_encoding or "").split(","))]
    names = [n for n in names if n and n != "identity"]
    for name in names:
        if name not in SUPPORTED:
            shown = name[:40].encode("ascii", "replace").decode() + ("…" if len(name) > 40 else "")
            raise OpenAIError(
                415, f"Content-Encoding {shown!r} is not supported; send the body as zstd, gzip, deflate or identity.",
                code="unsupported_content_encoding", headers={"accept-encoding": ", ".join(SUPPORTED)})
    return names


def decode_body(raw: bytes, content_encoding: str | None, *, max_size: int) -> bytes:
    """`raw` with every coding of `content_encoding` undone, last applied first.

    Guarantees: the result is at most `max_size` bytes, and each stage stops decoding as soon as
    its output passes `max_size` (intermediate stages are capped too). Raises `OpenAIError`:
    415 `unsupported_content_encoding` for a coding it does not know (checked before decoding
    anything), 400 `invalid_body_encoding` for corrupt, truncated or trailing data, 413
    `request_too_large` past `max_size`. With no coding (None, "", "identity") `raw` is returned
    as it is; an empty body stays empty whatever the coding.
    """
    if content_encoding is None:  # no header (nearly every request): nothing to parse or decode
        if len(raw) > max_size:
            raise _too_large(max_size, [])
        return raw
    names = codings(content_encoding)
    data = raw
    if names and data:
        for name in reversed(names):
            try:
                data = _DECODERS[name](data, max_size)
            except _Corrupt as exc:
                raise OpenAIError(400, f"The request body is not valid {name} data ({exc}); "
                                       f"check its Content-Encoding header.", code="invalid_body_encoding") from None
            except _TooLarge as exc:
                raise _too_large(max_size, names, str(exc)) from None
    if len(data) > max_size:
        raise _too_large(max_size, names)
    return data


def parse_body(raw: bytes) -> tuple[dict[str, Any], str]:
    """The JSON object and its `model`; a 400 `OpenAIError` for anything else."""
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


class _Model(msgspec.Struct):
    model: object = None


_model_decoder = msgspec.json.Decoder(_Model)


def model_of(raw: bytes) -> str | None:
    """The `model` string of a JSON object body, or None when `raw` is not one (then
    `parse_body` says why). Validates all of `raw` but builds no object but this one."""
    try:
        model = _model_decoder.decode(raw).model
    except msgspec.DecodeError:
        return None
    return model if isinstance(model, str) and model.strip() else None


def check_limits(body: dict[str, Any], max_items: int, max_depth: int) -> None:
    """Bounded nesting and item counts before any translation walks the body."""
    for key in ("input", "messages", "tools"):
        value = body.get(key)
        if isinstance(value, list) and len(value) > max_items:
            raise errors.invalid_request(f"`{key}` has {len(value)} items; the limit is {max_items}.", param=key)
    level: list[Any] = [body]  # the containers at `depth`, level by level: no tuple per node
    depth = 1
    while level:
        if depth > max_depth:
            raise errors.invalid_request(f"The request nests deeper than {max_depth} levels.", code="too_deep")
        below: list[Any] = []
        for node in level:
            below += [child for child in (node.values() if isinstance(node, dict) else node)
                      if isinstance(child, (dict, list))]
        level = below
        depth += 1


# -- zlib family ----------------------------------------------------------------------


def _zlib_stream(data: bytes, wbits: int, limit: int) -> tuple[list[bytes], int, bytes]:
    """One zlib/gzip/raw-deflate stream: its output chunks, their total size and the bytes after it.

    Raises _TooLarge past `limit`, _Corrupt if the stream is invalid or truncated.
    """
    decoder = zlib.decompressobj(wbits)
    out: list[bytes] = []
    size = 0
    pending = data
    while True:
        try:
            chunk = decoder.decompress(pending, limit - size + 1)  # max_length >= 1: 0 would mean unbounded
        except zlib.error as exc:
            raise _Corrupt(str(exc)) from None
        out.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        if decoder.eof:
            return out, size, decoder.unused_data
        pending = decoder.unconsumed_tail
        if not pending and not chunk:
            raise _Corrupt("the stream is truncated")


def _gzip(data: bytes, limit: int) -> bytes:
    """One or more gzip members; trailing zero padding is accepted as gzip(1) does."""
    out: list[bytes] = []
    size = 0
    while data:
        if not data.strip(b"\0"):
            break
        chunks, n, data = _zlib_stream(data, 16 + zlib.MAX_WBITS, limit - size)
        out += chunks
        size += n
    return b"".join(out)


def _deflate(data: bytes, limit: int) -> bytes:
    """zlib-wrapped deflate (RFC 9110), or raw deflate as some clients send it."""
    try:
        chunks, _, rest = _zlib_stream(data, zlib.MAX_WBITS, limit)
    except _Corrupt:
        try:
            chunks, _, rest = _zlib_stream(data, -zlib.MAX_WBITS, limit)
        except _Corrupt as exc:
            raise _Corrupt(f"neither zlib nor raw deflate: {exc}") from None
    if rest:
        raise _Corrupt(f"{len(rest)} bytes after the end of the stream")
    return b"".join(chunks)


# -- zstd -----------------------------------------------------------------------------


def _zstd(data: bytes, limit: int) -> bytes:
    """One or more zstd frames (skippable ones too), with or without a content size."""
    max_window = min(_MAX_WINDOW, max(_MIN_WINDOW, 1 << max(limit - 1, 1).bit_length()))
    _check_zstd_frames(memoryview(data), max_window)
    out: list[bytes] = []
    size = 0
    decoder = zstandard.ZstdDecompressor(max_window_size=max_window)
    try:
        with decoder.stream_reader(data, read_size=1 << 16, read_across_frames=True) as reader:
            while chunk := reader.read(min(_READ, limit - size + 1)):
                out.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise _TooLarge
    except zstandard.ZstdError as exc:
        raise _Corrupt(str(exc)) from None
    return b"".join(out)


def _check_zstd_frames(view: memoryview, max_window: int) -> None:
    """Walk the frame and block headers: the reader stops silently at truncated input, this does not.

    Raises _Corrupt for anything but a whole sequence of frames, _TooLarge for a frame whose
    window exceeds `max_window` (the decoder would have to allocate it).
    """
    pos, end = 0, len(view)
    while pos < end:
        magic = int.from_bytes(view[pos:pos + 4], "little") if end - pos >= 4 else -1
        if magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
            pos += 8 + int.from_bytes(view[pos + 4:pos + 8], "little")
            if pos > end:
                raise _Corrupt("truncated skippable frame")
            continue
        if magic != _ZSTD_MAGIC:
            raise _Corrupt("not a zstd frame" if pos == 0 else f"{end - pos} bytes of trailing data")
        try:
            window = zstandard.get_frame_parameters(view[pos:]).window_size
        except zstandard.ZstdError as exc:
            raise _Corrupt(str(exc)) from None
        if window > max_window:
            raise _TooLarge(f"a zstd frame needs a {window} byte window; the limit is {max_window}")
        fhd = view[pos + 4]
        single_segment, fcs_flag = fhd >> 5 & 1, fhd >> 6
        pos += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3] + (single_segment, 2, 4, 8)[fcs_flag]
        while True:
            if end - pos < 3:
                raise _Corrupt("truncated block header")
            header = int.from_bytes(view[pos:pos + 3], "little")
            block_type = header >> 1 & 3
            if block_type == 3:
                raise _Corrupt("reserved block type")
            pos += 3 + (1 if block_type == 1 else header >> 3)
            if header & 1:
                break
        pos += 4 if fhd & 4 else 0  # content checksum
        if pos > end:
            raise _Corrupt("truncated frame")


def _too_large(max_size: int, names: list[str], detail: str = "") -> OpenAIError:
    coding = f" once decoded (Content-Encoding: {', '.join(names)})" if names else ""
    message = f"Request body exceeds the {max_size} byte limit{coding}."
    return OpenAIError(413, f"{message} {detail}".strip(), code="request_too_large")


_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {"zstd": _zstd, "gzip": _gzip, "deflate": _deflate}
