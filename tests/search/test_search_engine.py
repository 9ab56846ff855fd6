"""WebSearch.augment: what reaches MiMo's body, what the outcome says, the deadline and the cache."""

from __future__ import annotations

import copy
import logging

import anyio
import pytest

from mimo_asgi._seal import ReasoningSealer
from mimo_asgi.search import SearchError, SearchResult, WebSearch, web_search_call_item
from mimo_asgi.translate.responses_request import chat_request_from_responses

RESULTS = [
    SearchResult("Python 3.14 released", "https://www.python.org/downloads/release/python-3140/",
                 "Python 3.14.0 is the newest major release.", "2025-10-07"),
    SearchResult("What's new in Python 3.14", "https://docs.python.org/3/whatsnew/3.14.html",
                 "This article explains the new features.", None),
    SearchResult("PEP 745", "https://peps.python.org/pep-0745/", "Release schedule.", "2024-01-01"),
]
FUNCTION_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


class FakeProvider:
    name = "fake"

    def __init__(self, results=RESULTS, *, delay: float = 0, error: Exception | None = None) -> None:
        self.results = list(results)
        self.delay = delay
        self.error = error
        self.calls: list[tuple[str, int, float]] = []
        self.cancelled = False

    async def search(self, query: str, *, max_results: int, deadline: float) -> list[SearchResult]:
        self.calls.append((query, max_results, deadline))
        if self.delay:
            try:
                await anyio.sleep(self.delay)
            except anyio.get_cancelled_exc_class():
                self.cancelled = True
                raise
        if self.error:
            raise self.error
        return self.results[:max_results]


def body_with(*messages, tools=None):
    body = {"model": "mimo-v2.5-pro", "messages": list(messages), "stream": True}
    if tools is not None:
        body["tools"] = tools
    return body


USER = {"role": "user", "content": "what is new in python 3.14"}


@pytest.mark.anyio
async def test_results_go_into_string_system_content():
    provider = FakeProvider()
    body = body_with({"role": "system", "content": "Be brief."}, USER, tools=[FUNCTION_TOOL])
    outcome = await WebSearch(provider).augment(body, {"type": "web_search"})
    assert outcome.status == "completed" and outcome.error is None
    assert outcome.query == "what is new in python 3.14" and list(outcome.results) == RESULTS
    system = body["messages"][0]["content"]
    assert system.startswith("Be brief.\n\n# Web search results\n")
    assert "for: what is new in python 3.14" in system
    assert "[2] What's new in Python 3.14\nURL: https://docs.python.org/3/whatsnew/3.14.html\n" in system
    assert "Published: 2025-10-07\nPython 3.14.0 is the newest major release." in system
    assert body["messages"][1] == USER and len(body["messages"]) == 2
    assert body["tools"] == [FUNCTION_TOOL]
    assert provider.calls == [("what is new in python 3.14", 5, 5.0)]


@pytest.mark.anyio
async def test_results_go_into_list_system_content_without_mutating_the_original():
    system = {"role": "system", "content": [{"type": "text", "text": "Rule one."}]}
    original = copy.deepcopy(system)
    body = body_with(system, USER)
    await WebSearch(FakeProvider()).augment(body, {"type": "web_search"})
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Rule one."}
    assert content[1]["type"] == "text" and content[1]["text"].startswith("# Web search results")
    assert len(content) == 2
    assert system == original  # the caller's message object is untouched


@pytest.mark.anyio
async def test_without_system_message_one_is_created_first():
    body = body_with(USER)
    await WebSearch(FakeProvider()).augment(body, {"type": "web_search"})
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"].startswith("# Web search results")


@pytest.mark.anyio
async def test_only_the_first_of_several_system_messages_gets_the_results():
    later = {"role": "system", "content": "Second system."}
    body = body_with({"role": "user", "content": "earlier"}, {"role": "system", "content": "First system."},
                     later, USER)
    await WebSearch(FakeProvider()).augment(body, {"type": "web_search"})
    assert body["messages"][0] == {"role": "user", "content": "earlier"}
    assert body["messages"][1]["content"].startswith("First system.\n\n# Web search results")
    assert body["messages"][2] == later


@pytest.mark.anyio
async def test_web_search_tools_are_deleted_never_nulled():
    body = body_with(USER, tools=[{"type": "web_search", "force_search": True}])
    body.update(tool_choice="auto", parallel_tool_calls=True)
    await WebSearch(FakeProvider()).augment(body, {"type": "web_search"})
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body

    mixed = body_with(USER, tools=[{"type": "web_search"}, FUNCTION_TOOL])
    mixed["tool_choice"] = {"type": "web_search"}
    await WebSearch(FakeProvider()).augment(mixed, {"type": "web_search"})
    assert mixed["tools"] == [FUNCTION_TOOL] and mixed["tool_choice"] == "auto"


@pytest.mark.anyio
async def test_query_from_multi_part_content_ignores_images_and_context():
    provider = FakeProvider()
    user = {"role": "user", "content": [
        {"type": "text", "text": "<environment_context>\n  <cwd>/repo</cwd>\n</environment_context>"},
        {"type": "text", "text": "  latest   rust\nrelease "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "notes"},
    ]}
    outcome = await WebSearch(provider).augment(body_with(user), {"type": "web_search"})
    assert provider.calls[0][0] == outcome.query == "latest rust release notes"


@pytest.mark.anyio
async def test_tool_output_last_turn_searches_the_last_user_text():
    provider = FakeProvider()
    body = body_with(
        {"role": "user", "content": "an older question"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "find news about zig 0.14"},
        {"role": "assistant", "reasoning_content": "r", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"items": [1, 2, 3]}'},
    )
    outcome = await WebSearch(provider).augment(body, {"type": "web_search"})
    assert outcome.query == "find news about zig 0.14"
    assert body["messages"][-1]["role"] == "tool"  # the system block went to the front, nothing appended


@pytest.mark.anyio
async def test_timeout_injects_a_note_and_cancels_the_provider(caplog):
    caplog.set_level(logging.INFO, logger="mimo_asgi")
    provider = FakeProvider(delay=30)
    body = body_with({"role": "system", "content": "Sys."}, USER, tools=[{"type": "web_search"}])
    outcome = await WebSearch(provider, deadline=0.05).augment(body, {"type": "web_search"})
    assert outcome.status == "failed" and outcome.results == ()
    assert outcome.error == "fake did not answer within 0.05s"
    assert provider.cancelled
    system = body["messages"][0]["content"]
    assert system.startswith("Sys.\n\n# Web search unavailable\n")
    assert "did not answer in time" in system
    assert "tools" not in body
    assert "python 3.14" not in caplog.text  # the query is never logged at INFO or above


@pytest.mark.anyio
@pytest.mark.parametrize(("error", "expected"), [
    (SearchError("fake answered HTTP 503"), "fake answered HTTP 503"),
    (RuntimeError("bug with secret details"), "fake failed (RuntimeError)"),
])
async def test_provider_failure_injects_a_note(error, expected, caplog):
    caplog.set_level(logging.DEBUG, logger="mimo_asgi")
    body = body_with(USER, tools=[{"type": "web_search"}])
    outcome = await WebSearch(FakeProvider(error=error)).augment(body, {"type": "web_search"})
    assert outcome == type(outcome)("what is new in python 3.14", (), "failed", expected)
    assert body["messages"][0]["content"].startswith("# Web search unavailable\nWeb search was requested but "
                                                     "the search service failed.")
    assert "tools" not in body
    assert "secret details" not in caplog.text


@pytest.mark.anyio
async def test_no_user_text_means_no_search_and_a_note():
    provider = FakeProvider()
    body = body_with({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                     tools=[{"type": "web_search"}])
    outcome = await WebSearch(provider).augment(body, {"type": "web_search"})
    assert outcome.status == "failed" and outcome.query == "" and outcome.error == "no user text to search for"
    assert provider.calls == []
    assert "there was no question to search for" in body["messages"][0]["content"]
    assert "tools" not in body


@pytest.mark.anyio
async def test_empty_results_complete_with_a_no_results_block():
    body = body_with(USER)
    outcome = await WebSearch(FakeProvider(results=[])).augment(body, {"type": "web_search"})
    assert outcome.status == "completed" and outcome.results == ()
    assert "The search found no results." in body["messages"][0]["content"]


@pytest.mark.anyio
async def test_identical_queries_hit_the_cache():
    provider = FakeProvider()
    search = WebSearch(provider)
    first = await search.augment(body_with(USER), {"type": "web_search"})
    second_body = body_with({"role": "user", "content": "What is new in   Python 3.14"})
    second = await search.augment(second_body, {"type": "web_search"})
    assert len(provider.calls) == 1
    assert second.results == first.results and second.status == "completed"
    assert "https://peps.python.org/pep-0745/" in second_body["messages"][0]["content"]


@pytest.mark.anyio
async def test_cache_entries_expire_and_failures_are_not_cached():
    now = [1000.0]
    provider = FakeProvider()
    search = WebSearch(provider, cache_ttl=60, clock=lambda: now[0])
    await search.augment(body_with(USER), {})
    now[0] += 59
    await search.augment(body_with(USER), {})
    assert len(provider.calls) == 1
    now[0] += 2
    await search.augment(body_with(USER), {})
    assert len(provider.calls) == 2

    failing = FakeProvider(error=SearchError("down"))
    search = WebSearch(failing, clock=lambda: now[0])
    await search.augment(body_with(USER), {})
    await search.augment(body_with(USER), {})
    assert len(failing.calls) == 2


@pytest.mark.anyio
async def test_injected_block_respects_max_chars():
    long = [SearchResult(f"Title {i} " + "t" * 300, f"https://e{i}.example.com/" + "p" * 50, "s" * 5000, "2025-01-01")
            for i in range(5)]
    body = body_with({"role": "system", "content": "S"}, USER)
    outcome = await WebSearch(FakeProvider(results=long), max_chars=1200).augment(body, {})
    block = body["messages"][0]["content"].removeprefix("S\n\n")
    assert len(block) <= 1200
    assert "[1] Title 0" in block and "https://e0.example.com/" in block
    assert len(outcome.results) == 5  # the outcome keeps every result; only the prompt is capped


@pytest.mark.anyio
async def test_tool_limit_and_allowed_domains_are_honoured():
    provider = FakeProvider()
    tool = {"type": "web_search", "limit": 2, "filters": {"allowed_domains": ["python.org"]}}
    outcome = await WebSearch(provider).augment(body_with(USER), tool)
    assert provider.calls[0][1] == 2
    assert [r.url for r in outcome.results] == [RESULTS[0].url, RESULTS[1].url]
    outcome = await WebSearch(FakeProvider()).augment(body_with(USER), {"filters": {"allowed_domains": ["peps.python.org"]}})
    assert [r.url for r in outcome.results] == [RESULTS[2].url]


@pytest.mark.anyio
async def test_cancellation_propagates_and_leaves_the_body_alone():
    provider = FakeProvider(delay=30)
    body = body_with(USER, tools=[{"type": "web_search"}])
    before = copy.deepcopy(body)
    finished = []
    async with anyio.create_task_group() as tg:
        async def run() -> None:
            finished.append(await WebSearch(provider, deadline=20).augment(body, {"type": "web_search"}))

        tg.start_soon(run)
        while not provider.calls:
            await anyio.sleep(0.001)
        tg.cancel_scope.cancel()
    assert finished == [] and provider.cancelled
    assert body == before


@pytest.mark.anyio
async def test_responses_translation_then_augment_then_web_search_call_item():
    translation = chat_request_from_responses(
        {"model": "gpt-5", "instructions": "Be nice", "input": "what is new in python 3.14",
         "tools": [{"type": "web_search"}]},
        upstream_model="mimo-v2.5-pro", sealer=ReasoningSealer("k"), native_web_search=False)
    assert translation.web_search is not None
    outcome = await WebSearch(FakeProvider()).augment(translation.body, translation.web_search)
    assert translation.body["messages"][0]["content"].startswith("Be nice\n\n# Web search results")
    assert "tools" not in translation.body
    assert web_search_call_item(outcome, "ws_1") == {
        "type": "web_search_call", "id": "ws_1", "status": "completed",
        "action": {"type": "search", "query": "what is new in python 3.14",
                   "sources": [{"type": "url", "url": r.url} for r in RESULTS]},
    }


def test_constructor_validates_and_repr_is_short():
    with pytest.raises(ValueError):
        WebSearch(FakeProvider(), max_results=0)
    with pytest.raises(ValueError):
        WebSearch(FakeProvider(), deadline=0)
    with pytest.raises(ValueError):
        WebSearch(FakeProvider(), max_chars=100)
    assert repr(WebSearch(FakeProvider(), deadline=2)).endswith("max_results=5, deadline=2)")
