"""MiMo's plain delta chunks, recognised in the bytes of one upstream read: no SSE decoding, no parse.

Both stream translators learn the envelope MiMo writes from a chunk they parse; a later read that
is exactly `data: ` + that envelope + one delta's members + `},"finish_reason":null}]}` + a blank
line can then be answered from its bytes (`ChatStream.forward`, `ResponsesStream.forward`), which
costs a few scans instead of a decode, a parse and a dump: the bulk of a long stream.
"""

from __future__ import annotations

import re
from typing import Any

from .. import _json

END = b'},"finish_reason":null}]}\n\n'
# In a delta's bytes, what `forward` leaves to `feed`: a control byte (never inside JSON strings;
# a line break would split the event) or a member `feed` acts on. One regex: one pass over the bytes, not four.
NOT_PLAIN = re.compile(rb'[\x00-\x1f]|"(?:finish_reason"|usage"|error)')
_ENVELOPE_KEYS = ["id", "object", "created", "model", "choices"]


def envelope(chunk: dict[str, Any], model: Any) -> bytes | None:
    """`data: {"id":…,"object":…,"created":…,"model":<model>,"choices":[{"index":0,"delta":{`
    for `chunk`, compactly spelt; None for a chunk of another shape."""
    choices = chunk.get("choices")
    if list(chunk)[:5] != _ENVELOPE_KEYS or not isinstance(choices, list) or len(choices) != 1 \
            or not isinstance(choices[0], dict) or list(choices[0])[:2] != ["index", "delta"]:
        return None
    dumps = _json.dumps
    return b'data: {"id":%b,"object":%b,"created":%b,"model":%b,"choices":[{"index":0,"delta":{' % (
        dumps(chunk["id"]), dumps(chunk["object"]), dumps(chunk["created"]), dumps(model))


def is_utf8(raw: bytes) -> bool:
    """What the decoder would not have to replace."""
    if raw.isascii():
        return True
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True
