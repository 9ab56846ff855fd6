"""The search providers against local fakes of SearXNG, Tavily and Brave (shapes as the real APIs answer)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from support import TEST_KEY

from mimo_asgi.search import (
    BraveSearch,
    SearchError,
    SearchResult,
    SearxngSearch,
    TavilySearch,
    WebSearch,
    provider_from_env,
)
from mimo_asgi.testing import serve_in_thread
from mimo_asgi.translate.chat import chat_request_from_chat

TAVILY_KEY = "tvly-dev-test-0123456789"
BRAVE_KEY = "BSA-test-0123456789abcdef"


class FakeSearchApis:
    """SearXNG at /searx, Tavily at /tavily, Brave at /brave; records requests; faults on demand."""

    def __init__(self) -> None:
        self.reset()
        self.app = Starlette(routes=[
            Route("/searx/search", self.searxng, methods=["GET", "POST"]),
            Route("/tavily/search", self.tavily, methods=["POST"]),
            Route("/brave/res/v1/web/search", self.brave, methods=["GET"]),
        ])

    def reset(self) -> None:
        self.requests: list[dict] = []
        self.hits = 8
        self.status: int | None = None  # answer this status instead
        self.raw: bytes | None = None  # answer this body instead (status 200)
        self.delay = 0.0
        self.json_format_enabled = True
        self.no_web = False

    def _record(self, request: Request, body: dict | None = None) -> None:
        self.requests.append({"method": request.method, "path": request.url.path,
                              "params": dict(request.query_params), "headers": dict(request.headers), "body": body})

    async def _faults(self) -> Response | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raw is not None:
            return Response(self.raw, media_type="application/json")
        return None

    async def searxng(self, request: Request) -> Response:
        self._record(request)
        if request.query_params.get("format") == "json" and not self.json_format_enabled:
            return PlainTextResponse("Forbidden", status_code=403)  # what SearXNG answers for a disabled format
        if fault := await self._faults():
            return fault
        if self.status:
            return PlainTextResponse("Internal Server Error", status_code=self.status)
        q = request.query_params.get("q", "")
        results = [{
            "url": f"https://site{i}.example.org/page/{i}", "title": f"Result {i} about {q}",
            "content": f"Snippet &amp; text {i}", "publishedDate": "2025-03-0%dT00:00:00" % (i % 9 + 1) if i % 2 else None,
            "thumbnail": "", "engine": "duckduckgo", "template": "default.html",
            "parsed_url": ["https", f"site{i}.example.org", f"/page/{i}", "", "", ""], "img_src": "", "priority": "",
            "engines": ["duckduckgo", "brave"], "positions": [i + 1], "score": 1.0 / (i + 1), "category": "general",
        } for i in range(self.hits)]
        results.insert(1, {"url": "https://site0.example.org/page/0", "title": "duplicate", "content": "dup"})
        results.insert(2, {"url": "magnet:?xt=urn:btih:abc", "title": "not a web page", "content": "x"})
        return JSONResponse({"query": q, "number_of_results": 0, "results": results, "answers": [],
                             "corrections": [], "infoboxes": [], "suggestions": [], "unresponsive_engines": []})

    async def tavily(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body)
        if request.headers.get("authorization") != f"Bearer {TAVILY_KEY}":
            return JSONResponse({"detail": {"error": "Unauthorized: missing or invalid API key."}}, status_code=401)
        if fault := await self._faults():
            return fault
        if self.status:
            return JSONResponse({"detail": {"error": "Internal error"}}, status_code=self.status)
        if (not isinstance(body, dict) or not isinstance(body.get("query"), str)
                or not isinstance(body.get("max_results", 5), int) or not 0 <= body.get("max_results", 5) <= 20
                or body.get("search_depth", "basic") not in ("basic", "advanced")
                or body.get("topic", "general") not in ("general", "news", "finance")):
            return JSONResponse({"detail": {"error": "Invalid request body"}}, status_code=400)
        n = min(body.get("max_results", 5), self.hits)
        news = body.get("topic") == "news"
        results = [{"url": f"https://news{i}.example.com/a/{i}", "title": f"Tavily {i}", "content": f"Content {i}",
                    "score": 0.9 - i / 100, "raw_content": None,
                    **({"published_date": "Mon, 03 Mar 2025 10:00:00 GMT"} if news else {})} for i in range(n)]
        return JSONResponse({"query": body["query"], "follow_up_questions": None, "answer": None, "images": [],
                             "results": results, "response_time": 0.42, "request_id": "req-123"})

    async def brave(self, request: Request) -> Response:
        self._record(request)
        token = request.headers.get("x-subscription-token")
        if not token:
            return _brave_error(422, "VALIDATION", "Unable to validate request parameter(s)")
        if token != BRAVE_KEY:
            return _brave_error(401, "SUBSCRIPTION_TOKEN_INVALID", "The provided subscription token is invalid.")
        count = int(request.query_params.get("count", "20"))
        if not 1 <= count <= 20:
            return _brave_error(422, "VALIDATION", "Unable to validate request parameter(s)")
        if fault := await self._faults():
            return fault
        if self.status:
            return _brave_error(self.status, "RATE_LIMITED", "Request rate limit exceeded for plan.")
        q = request.query_params.get("q", "")
        body: dict = {"query": {"original": q, "show_strict_warning": False, "is_navigational": False},
                      "mixed": {"type": "mixed", "main": []}, "type": "search"}
        if not self.no_web:
            body["web"] = {"type": "search", "family_friendly": True, "results": [{
                "title": f"<strong>Brave</strong> {i}", "url": f"https://brave{i}.example.net/p",
                "is_source_local": False, "is_source_both": False,
                "description": f"All about <strong>{q}</strong> &#x27;{i}&#x27;", "page_age": "2025-01-05T00:00:00",
                "profile": {"name": "Example"}, "language": "en", "family_friendly": True, "type": "search_result",
                "subtype": "generic", "meta_url": {"scheme": "https", "netloc": f"brave{i}.example.net"},
                **({"age": "January 5, 2025"} if i % 2 == 0 else {}),
            } for i in range(min(count, self.hits))]}
        return JSONResponse(body)


def _brave_error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "ErrorResponse", "error": {"id": "e1", "status": status, "code": code,
                                                             "detail": detail, "meta": {}}, "time": 1}, status_code=status)


@pytest.fixture(scope="module")
def apis_server():
    apis = FakeSearchApis()
    with serve_in_thread(apis.app) as url:
        yield apis, url


@pytest.fixture
def apis(apis_server):
    apis_server[0].reset()
    return apis_server[0]


@pytest.fixture
def base(apis_server):
    return apis_server[1]


# -- SearXNG ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_searxng_results_and_request(apis, base):
    provider = SearxngSearch(base + "/searx/", params={"language": "en"})
    try:
        results = await provider.search("python 3.14", max_results=3, deadline=5)
    finally:
        await provider.aclose()
    assert results == [
        SearchResult("Result 0 about python 3.14", "https://site0.example.org/page/0", "Snippet & text 0", None),
        SearchResult("Result 1 about python 3.14", "https://site1.example.org/page/1", "Snippet & text 1",
                     "2025-03-02T00:00:00"),
        SearchResult("Result 2 about python 3.14", "https://site2.example.org/page/2", "Snippet & text 2", None),
    ]
    (req,) = apis.requests
    assert req["method"] == "GET" and req["path"] == "/searx/search"
    assert req["params"] == {"q": "python 3.14", "format": "json", "language": "en"}


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["format_disabled", "status", "not_json", "wrong_shape"])
async def test_searxng_failures_raise_search_error(apis, base, fault):
    if fault == "format_disabled":
        apis.json_format_enabled = False
    elif fault == "status":
        apis.status = 502
    elif fault == "not_json":
        apis.raw = b"<html>oops</html>"
    else:
        apis.raw = b'{"results": "nope"}'
    provider = SearxngSearch(base + "/searx")
    with pytest.raises(SearchError) as info:
        await provider.search("q", max_results=3, deadline=5)
    await provider.aclose()
    assert str(info.value).startswith("searxng ")
    if fault == "format_disabled":
        assert "HTTP 403" in str(info.value)


@pytest.mark.anyio
async def test_searxng_slow_answer_is_a_search_error(apis, base):
    apis.delay = 1.0
    provider = SearxngSearch(base + "/searx")
    with pytest.raises(SearchError, match="did not answer within 0.1s"):
        await provider.search("q", max_results=3, deadline=0.1)
    await provider.aclose()


@pytest.mark.anyio
async def test_oversize_answer_is_a_search_error(apis, base, monkeypatch):
    monkeypatch.setattr("mimo_asgi.search._provider.MAX_RESPONSE_BYTES", 1000)
    apis.hits = 40  # about 14 kB of JSON
    provider = SearxngSearch(base + "/searx")
    with pytest.raises(SearchError, match="more than 1000 bytes"):
        await provider.search("q", max_results=3, deadline=5)
    await provider.aclose()


@pytest.mark.anyio
async def test_unreachable_provider_is_a_search_error():
    provider = SearxngSearch("http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(SearchError, match="unreachable"):
        await provider.search("q", max_results=3, deadline=2)
    await provider.aclose()


@pytest.mark.anyio
async def test_shared_client_is_used_and_not_closed(apis, base):
    async with httpx.AsyncClient() as client:
        provider = SearxngSearch(base + "/searx", client=client)
        assert len(await provider.search("q", max_results=2, deadline=5)) == 2
        await provider.aclose()
        assert not client.is_closed


# -- Tavily ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tavily_results_request_body_and_auth(apis, base):
    provider = TavilySearch(TAVILY_KEY, base_url=base + "/tavily")
    results = await provider.search("rust 2024 edition", max_results=4, deadline=5)
    await provider.aclose()
    assert [r.url for r in results] == [f"https://news{i}.example.com/a/{i}" for i in range(4)]
    assert results[0] == SearchResult("Tavily 0", "https://news0.example.com/a/0", "Content 0", None)
    (req,) = apis.requests
    assert req["headers"]["authorization"] == f"Bearer {TAVILY_KEY}"
    assert req["body"] == {"query": "rust 2024 edition", "max_results": 4, "search_depth": "basic", "topic": "general",
                           "include_answer": False, "include_raw_content": False, "include_images": False}
    assert "api_key" not in req["body"]  # the key travels in the header only


@pytest.mark.anyio
async def test_tavily_news_topic_gives_dates_and_caps_max_results(apis, base):
    provider = TavilySearch(TAVILY_KEY, base_url=base + "/tavily", topic="news")
    results = await provider.search("q", max_results=50, deadline=5)
    await provider.aclose()
    assert apis.requests[0]["body"]["max_results"] == 20  # Tavily refuses more
    assert len(results) == 8
    assert results[0].published == "Mon, 03 Mar 2025 10:00:00 GMT"


@pytest.mark.anyio
async def test_tavily_bad_key_never_shows_the_key(apis, base, caplog):
    caplog.set_level(logging.DEBUG)
    provider = TavilySearch("tvly-wrong-secret-key", base_url=base + "/tavily")
    with pytest.raises(SearchError) as info:
        await provider.search("q", max_results=3, deadline=5)
    await provider.aclose()
    assert str(info.value) == "tavily answered HTTP 401"
    assert "tvly-wrong-secret-key" not in repr(provider) + str(provider) + caplog.text


@pytest.mark.anyio
async def test_tavily_server_error(apis, base):
    apis.status = 500
    provider = TavilySearch(TAVILY_KEY, base_url=base + "/tavily")
    with pytest.raises(SearchError, match="HTTP 500"):
        await provider.search("q", max_results=3, deadline=5)
    await provider.aclose()


# -- Brave -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_brave_results_request_and_html_stripped(apis, base):
    provider = BraveSearch(BRAVE_KEY, base_url=base + "/brave")
    results = await provider.search("zig", max_results=3, deadline=5)
    await provider.aclose()
    assert results == [
        SearchResult("Brave 0", "https://brave0.example.net/p", "All about zig '0'", "January 5, 2025"),
        SearchResult("Brave 1", "https://brave1.example.net/p", "All about zig '1'", "2025-01-05T00:00:00"),
        SearchResult("Brave 2", "https://brave2.example.net/p", "All about zig '2'", "January 5, 2025"),
    ]
    (req,) = apis.requests
    assert req["params"] == {"q": "zig", "count": "3"}
    assert req["headers"]["x-subscription-token"] == BRAVE_KEY
    assert req["headers"]["accept"] == "application/json"


@pytest.mark.anyio
async def test_brave_without_web_section_is_no_results(apis, base):
    apis.no_web = True
    provider = BraveSearch(BRAVE_KEY, base_url=base + "/brave")
    assert await provider.search("zzzz", max_results=3, deadline=5) == []
    await provider.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(("key", "status", "expected"), [
    ("BSA-wrong-key-value", None, "brave answered HTTP 401"),
    (BRAVE_KEY, 429, "brave answered HTTP 429"),
])
async def test_brave_errors(apis, base, key, status, expected):
    apis.status = status
    provider = BraveSearch(key, base_url=base + "/brave")
    with pytest.raises(SearchError) as info:
        await provider.search("q", max_results=25, deadline=5)
    await provider.aclose()
    assert str(info.value) == expected
    assert apis.requests[0]["params"]["count"] == "20"
    assert key not in repr(provider)


# -- configuration ---------------------------------------------------------------------------


def test_from_env_and_provider_selection():
    assert provider_from_env({}) is None
    assert isinstance(provider_from_env({"SEARXNG_URL": "http://s:8080", "BRAVE_API_KEY": "b"}), SearxngSearch)
    assert isinstance(provider_from_env({"TAVILY_API_KEY": "t", "BRAVE_API_KEY": "b"}), TavilySearch)
    chosen = provider_from_env({"MIMO_ASGI_SEARCH_PROVIDER": "Brave", "TAVILY_API_KEY": "t", "BRAVE_API_KEY": "bk"})
    assert isinstance(chosen, BraveSearch) and "bk" not in repr(chosen)
    with pytest.raises(ValueError, match="BRAVE_API_KEY"):
        provider_from_env({"MIMO_ASGI_SEARCH_PROVIDER": "brave"})
    with pytest.raises(ValueError, match="must be one of"):
        provider_from_env({"MIMO_ASGI_SEARCH_PROVIDER": "google"})
    with pytest.raises(ValueError, match="TAVILY_API_KEY"):
        TavilySearch.from_env(env={})
    with pytest.raises(ValueError, match="SEARXNG_URL"):
        SearxngSearch.from_env(env={"SEARXNG_URL": "  "})


# -- end to end: a translated Token Plan body, augmented, accepted by the fake MiMo ----------


@pytest.mark.anyio
async def test_augmented_chat_body_is_accepted_by_fake_mimo(apis, base, fake, fake_url):
    client_body = {"model": "gpt-5", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
        {"role": "user", "content": [{"type": "text", "text": "latest zig release"}]},
    ], "tools": [{"type": "web_search"}]}
    translation = chat_request_from_chat(client_body, upstream_model="mimo-v2.5-pro", native_web_search=False)
    assert translation.web_search == {"type": "web_search"}
    search = WebSearch(SearxngSearch(base + "/searx"), max_results=2)
    outcome = await search.augment(translation.body, translation.web_search)
    await search.aclose()
    assert outcome.status == "completed" and outcome.query == "latest zig release"
    async with httpx.AsyncClient() as client:
        answer = await client.post(fake_url + "/chat/completions", json={**translation.body, "stream": False},
                                   headers={"authorization": f"Bearer {TEST_KEY}"})
    assert answer.status_code == 200, answer.text
    sent = fake.requests[-1].body
    assert "tools" not in sent
    system = sent["messages"][0]  # the translator flattened the client's parts into one string
    assert system["role"] == "system" and system["content"].startswith("You are terse.\n\n# Web search results")
    assert "https://site1.example.org/page/1" in system["content"]
    assert "https://site2.example.org/page/2" not in system["content"]  # max_results=2
