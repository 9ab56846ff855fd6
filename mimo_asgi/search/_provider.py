"""What a search backend is: the protocol, its result type, its error, and the shared HTTP plumbing.

Providers speak to their API over one `httpx.AsyncClient` (shared if given, else their own),
read at most `MAX_RESPONSE_BYTES`, and raise only `SearchError`, whose message names the
provider and the HTTP status, never the key, the query or the URL.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anyio
import httpx

from .. import _json

MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_TAGS = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One hit: plain text (no HTML), an http(s) URL, and the date as the provider gave it."""

    title: str
    url: str
    snippet: str
    published: str | None = None


@runtime_checkable
class SearchProvider(Protocol):
    """A web search backend. `deadline` is the seconds the call may take; on any failure it
    raises `SearchError` (or lets cancellation through)."""

    name: str

    async def search(self, query: str, *, max_results: int, deadline: float) -> list[SearchResult]: ...


class SearchError(Exception):
    """A search that did not produce results; the message is safe to log and show."""


def clean_text(value: Any) -> str:
    """Provider text as plain text: tags removed, entities decoded, whitespace collapsed."""
    if not isinstance(value, str):
        return ""
    return _SPACE.sub(" ", html.unescape(_TAGS.sub("", value))).strip()


def make_result(title: Any, url: Any, snippet: Any, published: Any) -> SearchResult | None:
    """A SearchResult from raw fields, or None when the URL is not http(s)."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    date = clean_text(published) or None
    return SearchResult(clean_text(title) or url, url, clean_text(snippet), date)


def parse_results(raw: Any, where: str, snippet: str, date: str, *, fallback_date: str = "") -> list[SearchResult]:
    """The http(s) hits of a provider's result list (`title`, `url`, and the named snippet and
    date fields); `where` names the list in the error when it is not one."""
    if not isinstance(raw, list):
        raise SearchError(f"answered without a {where} list")
    hits = (make_result(r.get("title"), r.get("url"), r.get(snippet), r.get(date) or r.get(fallback_date))
            for r in raw if isinstance(r, dict))
    return [hit for hit in hits if hit is not None]


def dedupe(results: list[SearchResult], limit: int) -> list[SearchResult]:
    """At most `limit` results, the first of each URL kept."""
    seen: set[str] = set()
    out: list[SearchResult] = []
    for r in results:
        if r.url not in seen:
            seen.add(r.url)
            out.append(r)
            if len(out) >= limit:
                break
    return out


class HttpProvider:
    """Owns (or borrows) the client, sends one request and returns its JSON object."""

    name = "http"

    def __init__(self, base_url: str, *, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._owns_client = client is None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))
        return self._client

    async def aclose(self) -> None:
        """Close the client if this provider created it."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _fetch(self, method: str, path: str, *, deadline: float, **kwargs: Any) -> dict[str, Any]:
        """The JSON object answered within `deadline` seconds (all phases together)."""
        request = self._http().build_request(method, self.base_url + path, timeout=httpx.Timeout(deadline), **kwargs)
        try:
            with anyio.fail_after(deadline):
                response = await self._http().send(request, stream=True)
                try:
                    if response.status_code != 200:
                        raise SearchError(f"{self.name} answered HTTP {response.status_code}")
                    body = await _read_capped(response)
                    if body is None:
                        raise SearchError(f"{self.name} answered with more than {MAX_RESPONSE_BYTES} bytes")
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError):
            raise SearchError(f"{self.name} did not answer within {deadline:g}s") from None
        except httpx.HTTPError as exc:
            raise SearchError(f"{self.name} is unreachable ({type(exc).__name__})") from None
        try:
            data = _json.loads(body)
        except _json.JSONDecodeError:
            raise SearchError(f"{self.name} answered with a body that is not JSON") from None
        if not isinstance(data, dict):
            raise SearchError(f"{self.name} answered with an unexpected JSON shape")
        return data


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than MAX_RESPONSE_BYTES."""
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > MAX_RESPONSE_BYTES:
            return None
        parts.append(part)
    return b"".join(parts)

