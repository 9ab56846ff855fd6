"""What a search produced, and how it shows in a Responses answer (pure).

`SearchOutcome` is what `WebSearch.augment` returns; `web_search_call_item` turns it into the
Responses output item and `citations_for` finds the `url_citation` annotations for the model's
text.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._provider import SearchResult


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """query: what was searched ("" when there was nothing to search for); results: what was
    injected (empty on failure); error: why it failed, safe to log (no key, no query)."""

    query: str
    results: tuple[SearchResult, ...]
    status: Literal["completed", "failed"]
    error: str | None = None


def web_search_call_item(outcome: SearchOutcome, item_id: str) -> dict[str, Any]:
    """The Responses `web_search_call` output item for `outcome` (status completed or failed)."""
    return {
        "type": "web_search_call",
        "id": item_id,
        "status": outcome.status,
        "action": {"type": "search", "query": outcome.query,
                   "sources": [{"type": "url", "url": r.url} for r in outcome.results]},
    }


def citations_for(text: str, results: Sequence[SearchResult]) -> list[dict[str, Any]]:
    """`url_citation` annotations for the results the text cites, ordered by position.

    A result is cited when its URL (with or without scheme or trailing slash) appears in the
    text as a whole URL, giving the span of that first occurrence; or when only its domain
    appears as a whole word, giving 0/0 (MiMo-style, no position). One annotation per URL.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in results:
        if r.url in seen:
            continue
        span = _url_span(text, r.url)
        if span is None and not _cites_domain(text, r.url):
            continue
        seen.add(r.url)
        start, end = span or (0, 0)
        out.append({"type": "url_citation", "url": r.url, "title": r.title, "start_index": start, "end_index": end})
    out.sort(key=lambda a: a["start_index"])
    return out


_BEFORE = r"(?<![\w.-])(?<![\w.-]/)"  # not inside a word, a host or a path; "://" may precede
_AFTER_URL = r"(?![\w/%~+=&?#-]|\.\w)"  # a sentence's full stop may follow, a longer path may not


def _url_span(text: str, url: str) -> tuple[int, int] | None:
    bare = url.split("://", 1)[-1]
    for candidate in dict.fromkeys((url, url.rstrip("/"), bare, bare.rstrip("/"))):
        if not candidate:
            continue
        match = re.search(_BEFORE + re.escape(candidate) + _AFTER_URL, text)
        if match:
            return match.start(), match.end()
    return None


def _cites_domain(text: str, url: str) -> bool:
    host = (urllib.parse.urlsplit(url).hostname or "").removeprefix("www.")
    if "." not in host:
        return False
    pattern = _BEFORE + r"(?:www\.)?" + re.escape(host) + r"(?![\w-]|\.\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None
