"""Brave Search: `GET {base}/res/v1/web/search?q=...&count=N` with `X-Subscription-Token`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from ..accounts import Secret
from ._provider import HttpProvider, SearchError, SearchResult, dedupe, parse_results

DEFAULT_URL = "https://api.search.brave.com"
_MAX = 20  # Brave's ceiling for `count`


class BraveSearch(HttpProvider):
    """Searches Brave's web index. Descriptions arrive with `<strong>` highlights; they are stripped."""

    name = "brave"

    def __init__(self, api_key: str | Secret, *, base_url: str = DEFAULT_URL,
                 client: httpx.AsyncClient | None = None) -> None:
        key = api_key if isinstance(api_key, Secret) else Secret(str(api_key))
        if not key.get():
            raise ValueError("BraveSearch needs an API key")
        super().__init__(base_url, client=client)
        self._key = key

    @classmethod
    def from_env(cls, *, client: httpx.AsyncClient | None = None,
                 env: Mapping[str, str] = os.environ) -> BraveSearch:
        """From `BRAVE_API_KEY`; ValueError when it is not set."""
        key = env.get("BRAVE_API_KEY", "").strip()
        if not key:
            raise ValueError("BRAVE_API_KEY is not set")
        return cls(key, client=client)

    async def search(self, query: str, *, max_results: int, deadline: float) -> list[SearchResult]:
        params = {"q": query, "count": str(max(1, min(max_results, _MAX)))}
        headers = {"accept": "application/json", "x-subscription-token": self._key.get()}
        data = await self._fetch("GET", "/res/v1/web/search", deadline=deadline, params=params, headers=headers)
        return dedupe(_results(data, self.name), max_results)


def _results(data: dict[str, Any], name: str) -> list[SearchResult]:
    web = data.get("web")
    if web is None:
        return []  # Brave leaves `web` out when nothing matched
    try:
        return parse_results(web.get("results") if isinstance(web, dict) else None, "web.results",
                             "description", "age", fallback_date="page_age")
    except SearchError as exc:
        raise SearchError(f"{name} {exc}") from None
