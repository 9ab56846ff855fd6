"""SearXNG: `GET {base}/search?q=...&format=json` on your own instance (no key).

The instance must allow the `json` format (`search.formats` in its settings.yml); otherwise
it answers 403, which surfaces as a SearchError.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from ._provider import HttpProvider, SearchError, SearchResult, dedupe, parse_results


class SearxngSearch(HttpProvider):
    """Searches a SearXNG instance. `params` are extra query parameters (e.g. `language`)."""

    name = "searxng"

    def __init__(self, base_url: str, *, client: httpx.AsyncClient | None = None,
                 params: Mapping[str, str] | None = None) -> None:
        if not base_url:
            raise ValueError("SearxngSearch needs the instance URL")
        super().__init__(base_url, client=client)
        self._params = dict(params or {})

    @classmethod
    def from_env(cls, *, client: httpx.AsyncClient | None = None,
                 env: Mapping[str, str] = os.environ) -> SearxngSearch:
        """From `SEARXNG_URL`; ValueError when it is not set."""
        url = env.get("SEARXNG_URL", "").strip()
        if not url:
            raise ValueError("SEARXNG_URL is not set")
        return cls(url, client=client)

    async def search(self, query: str, *, max_results: int, deadline: float) -> list[SearchResult]:
        params = {**self._params, "q": query, "format": "json"}
        data = await self._fetch("GET", "/search", deadline=deadline, params=params,
                                 headers={"accept": "application/json"})
        return dedupe(_results(data, self.name), max_results)


def _results(data: dict[str, Any], name: str) -> list[SearchResult]:
    try:
        return parse_results(data.get("results"), "results", "content", "publishedDate")
    except SearchError as exc:
        raise SearchError(f"{name} {exc}") from None
