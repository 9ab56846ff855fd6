"""The search query for a MiMo chat body: the last user turn's own words (pure).

The query is the text of the last `user` message that has any, so a conversation whose last
turn is a tool output still searches for what the user asked. Text parts are joined; images,
JSON documents and whole-part context blocks (`<environment_context>...</environment_context>`,
as Codex sends) are skipped, never serialised into the query. Whitespace is collapsed and the
result is cut at a word boundary to at most `max_chars`.
"""

from __future__ import annotations

import re
from typing import Any

from .. import _json

MAX_QUERY_CHARS = 400
_SPACE = re.compile(r"\s+")
_CONTEXT_BLOCK = re.compile(r"^\s*<([A-Za-z_][\w.-]*)(?:\s[^>]*)?>.*</\1>\s*$", re.DOTALL)
_TEXT_TYPES = frozenset({"text", "input_text"})


def extract_query(messages: Any, *, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The query, or "" when no user turn has searchable text."""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _user_text(message.get("content"))
            if text:
                return _cap(text, max_chars)
    return ""


def _user_text(content: Any) -> str:
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [p["text"] for p in content
                 if isinstance(p, dict) and p.get("type") in _TEXT_TYPES and isinstance(p.get("text"), str)]
    else:
        return ""
    kept = [_SPACE.sub(" ", p).strip() for p in parts if _is_question(p)]
    return " ".join(p for p in kept if p)


def _is_question(text: str) -> bool:
    """False for text that is context or data rather than the user's words."""
    stripped = text.strip()
    if not stripped or _CONTEXT_BLOCK.match(stripped):
        return False
    if stripped[0] in "{[":
        try:
            _json.loads(stripped)
        except _json.JSONDecodeError:
            return True
        return False
    return True


def _cap(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space >= max_chars * 0.6:  # a word boundary not too far back
        cut = cut[:space]
    return cut.strip()
