"""Auto web search for accounts without MiMo's web search plugin (Token Plan).

`WebSearch(provider).augment(body, tool)` searches for the last user turn of a translated MiMo
chat body, puts a compact results block into its system message and removes the web_search
tool; it returns a `SearchOutcome` for the Responses `web_search_call` item
(`web_search_call_item`) and the `url_citation` annotations (`citations_for`). Providers:
`SearxngSearch`, `TavilySearch`, `BraveSearch`, or anything with the `SearchProvider` shape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from ._engine import WebSearch
from ._outcome import SearchOutcome, citations_for, web_search_call_item
from ._provider import SearchError, SearchProvider, SearchResult
from ._query import extract_query
from .brave import BraveSearch
from .searxng import SearxngSearch
from .tavily import TavilySearch

PROVIDERS: dict[str, type[SearxngSearch] | type[TavilySearch] | type[BraveSearch]] = {
    "searxng": SearxngSearch,
    "tavily": TavilySearch,
    "brave": BraveSearch,
}
_SIGNALS = (("SEARXNG_URL", "searxng"), ("TAVILY_API_KEY", "tavily"), ("BRAVE_API_KEY", "brave"))


def provider_from_env(env: Mapping[str, str] = os.environ, *,
                      client: httpx.AsyncClient | None = None) -> SearchProvider | None:
    """The provider the environment configures, or None.

    `MIMO_ASGI_SEARCH_PROVIDER` (searxng, tavily, brave) chooses one, and its own variable must
    then be set (ValueError otherwise); without it, the first of `SEARXNG_URL`,
    `TAVILY_API_KEY`, `BRAVE_API_KEY` that is set wins.
    """
    chosen = env.get("MIMO_ASGI_SEARCH_PROVIDER", "").strip().lower()
    if chosen:
        if chosen not in PROVIDERS:
            raise ValueError(f"MIMO_ASGI_SEARCH_PROVIDER must be one of {', '.join(PROVIDERS)}, not {chosen!r}")
        return PROVIDERS[chosen].from_env(client=client, env=env)
    for variable, name in _SIGNALS:
        if env.get(variable, "").strip():
            return PROVIDERS[name].from_env(client=client, env=env)
    return None


__all__ = [
    "BraveSearch",
    "SearchError",
    "SearchOutcome",
    "SearchProvider",
    "SearchResult",
    "SearxngSearch",
    "TavilySearch",
    "WebSearch",
    "citations_for",
    "extract_query",
    "provider_from_env",
    "web_search_call_item",
]
