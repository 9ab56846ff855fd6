"""Tavily: `POST {base}/search` with a JSON body and `Authorization: Bearer <key>`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from ..accounts import Secret
from ._provider import HttpProvider, SearchError, SearchResult, dedupe, parse_results

DEFAULT_URL = "https://api.tavily.com"
_MAX = 20  # Tavily's documented ceiling for max_results


class TavilySearch(HttpProvider):
    """Searches Tavily; `search_depth` "basic" (1 credit) or "advanced" (2), `topic` "general" or "news"."""

    name = "tavily"

    def __init__(self, api_key: str | Secret, *, base_url: str = DEFAULT_URL, client: httpx.AsyncClient | None = None,
                 search_depth: str = "basic", topic: str = "general") -> None:
        key = api_key if isinstance(api_key, Secret) else Secret(str(api_key))
        if not key.get():
            raise ValueError("TavilySearch needs an API key")
        super().__init__(base_url, client=client)
        self._key = key
        self._options = {"search_depth": search_depth, "topic": topic}

    @classmethod
    def from_env(cls, *, client: httpx.AsyncClient | None = None,
                 env: Mapping[str, str] = os.environ) -> TavilySearch:
        """From `TAVILY_API_KEY`; ValueError when it is not set."""
        key = env.get("TAVILY_API_KEY", "").strip()
        if not key:
            raise ValueError("TAVILY_API_KEY is not set")
        return cls(key, client=client)

    async def search(self, query: str, *, max_results: int, deadline: float) -> list[SearchResult]:
        body = {
            "query": query,
            "max_results": max(1, min(max_results, _MAX)),
            **self._options,
            "include_answer": False,
            "include_raw_content": False,
            "include_images": False,
        }
        data = await self._fetch("POST", "/search", deadline=deadline, json=body,
                                 headers={"authorization": f"Bearer {self._key.get()}"})
        return dedupe(_results(data, self.name), max_results)


def _results(data: dict[str, Any], name: str) -> list[SearchResult]:
    try:
        return parse_results(data.get("results"), "results", "content", "published_date")
    except SearchError as exc:
        raise SearchError(f"{name} {exc}") from None
