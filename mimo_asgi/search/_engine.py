"""WebSearch: search for the last user turn and put the results into a MiMo chat body.

Never raises (except cancellation, which propagates with the request): a failed, slow or
impossible search leaves a short note in the system prompt instead of results.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import anyio

from ._cache import TTLCache
from ._inject import MIN_BLOCK_CHARS, inject_system, remove_web_search_tools, results_block, unavailable_note
from ._outcome import SearchOutcome
from ._provider import SearchError, SearchProvider, SearchResult
from ._query import extract_query

logger = logging.getLogger("mimo_asgi.search")


class WebSearch:
    """The auto web search the relays run for accounts without MiMo's search plugin.

    max_results: results asked for and injected (a tool's `limit` may lower it).
    deadline: seconds one search may take before the request goes on without it.
    cache_ttl / cache_size: in-process LRU of query -> results (0 disables).
    max_chars: the most characters the injected block may have.
    clock: monotonic seconds, for the cache (tests inject one).
    """

    def __init__(self, provider: SearchProvider, *, max_results: int = 5, deadline: float = 5.0,
                 cache_ttl: float = 600, cache_size: int = 256, max_chars: int = 6000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        if max_chars < MIN_BLOCK_CHARS:
            raise ValueError(f"max_chars must be at least {MIN_BLOCK_CHARS}")
        self.provider = provider
        self.max_results = max_results
        self.deadline = deadline
        self.max_chars = max_chars
        self._cache: TTLCache[tuple[SearchResult, ...]] = TTLCache(cache_size, cache_ttl, clock=clock)

    def __repr__(self) -> str:
        return f"WebSearch({self.provider!r}, max_results={self.max_results}, deadline={self.deadline:g})"

    async def aclose(self) -> None:
        """Close the provider's own HTTP client, if it has one."""
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            await close()

    async def augment(self, body: dict[str, Any], tool: dict[str, Any] | None) -> SearchOutcome:
        """Search for `body`'s last user turn and inject the results (or a note) into its system
        message; remove every web_search tool from `body`. `tool` is the client's web_search tool
        (its `limit` and `filters.allowed_domains` are honoured). Mutates `body`."""
        tool = tool if isinstance(tool, dict) else {}
        query = extract_query(body.get("messages"))
        if not query:
            outcome = SearchOutcome("", (), "failed", "no user text to search for")
            note = unavailable_note("there was no question to search for")
        else:
            outcome, note = await self._search(query, self._limit(tool))
        if outcome.status == "completed":
            outcome = SearchOutcome(query, _allowed(outcome.results, tool), "completed")
            note = results_block(query, outcome.results, max_chars=self.max_chars,
                                 date=time.strftime("%Y-%m-%d (UTC)", time.gmtime()))
        inject_system(body, note)
        remove_web_search_tools(body)
        return outcome

    async def _search(self, query: str, limit: int) -> tuple[SearchOutcome, str]:
        key = (query.casefold(), limit)
        cached = self._cache.get(key)
        if cached is not None:
            return SearchOutcome(query, cached, "completed"), ""
        name = getattr(self.provider, "name", type(self.provider).__name__)
        started = time.monotonic()
        try:
            with anyio.fail_after(self.deadline):
                found = await self.provider.search(query, max_results=limit, deadline=self.deadline)
        except TimeoutError:
            error, reason = f"{name} did not answer within {self.deadline:g}s", "the search did not answer in time"
        except SearchError as exc:
            error, reason = str(exc), "the search service failed"
        except Exception as exc:  # a provider bug must not fail the request
            error, reason = f"{name} failed ({type(exc).__name__})", "the search service failed"
        else:
            results = tuple(r for r in found if isinstance(r, SearchResult))[:limit]
            self._cache.put(key, results)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("mimo_asgi: %s found %d results in %.2fs for %r",
                             name, len(results), time.monotonic() - started, query)
            return SearchOutcome(query, results, "completed"), ""
        logger.warning("mimo_asgi: web search unavailable: %s", error)
        return SearchOutcome(query, (), "failed", error), unavailable_note(reason)

    def _limit(self, tool: dict[str, Any]) -> int:
        limit = tool.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
            return min(limit, self.max_results)
        return self.max_results


def _allowed(results: tuple[SearchResult, ...], tool: dict[str, Any]) -> tuple[SearchResult, ...]:
    """The results on the tool's `filters.allowed_domains` (all of them when there is no filter)."""
    filters = tool.get("filters")
    domains = filters.get("allowed_domains") if isinstance(filters, dict) else None
    if not isinstance(domains, list):
        return results
    wanted = [d.lower().strip().removeprefix("www.") for d in domains if isinstance(d, str) and d.strip()]
    if not wanted:
        return results
    kept = []
    for r in results:
        host = (urllib.parse.urlsplit(r.url).hostname or "").lower()
        if any(host == d or host.endswith("." + d) for d in wanted):
            kept.append(r)
    return tuple(kept)
