"""The pure parts of auto web search: query extraction, the results block, injection, citations, the cache."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mimo_asgi.search import SearchResult, citations_for, extract_query
from mimo_asgi.search._cache import TTLCache
from mimo_asgi.search._inject import inject_system, remove_web_search_tools, results_block
from mimo_asgi.search._provider import clean_text, make_result

# -- query ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "user", "content": "  hello\n\tworld "}], "hello world"),
    ([{"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "input_text", "text": "second"}]}],
     "second"),
    ([{"role": "user", "content": "real question"}, {"role": "user", "content": '{"a": [1, 2]}'}], "real question"),
    ([{"role": "user", "content": "q"}, {"role": "user", "content": [{"type": "text", "text": "[1, 2]"}]}], "q"),
    ([{"role": "user", "content": "[not json] still a question"}], "[not json] still a question"),
    ([{"role": "user", "content": "ask"}, {"role": "user", "content": "<user_instructions>x</user_instructions>"}],
     "ask"),
    ([{"role": "assistant", "content": "only the model spoke"}], ""),
    ([{"role": "user", "content": None}], ""),
    ([], ""),
    (None, ""),
    ("not a list", ""),
])
def test_extract_query(messages, expected):
    assert extract_query(messages) == expected


def test_query_is_capped_at_a_word_boundary():
    text = " ".join(["word"] * 200)  # 999 characters
    query = extract_query([{"role": "user", "content": text}])
    assert len(query) <= 400 and query.endswith("word") and query == " ".join(["word"] * (len(query) // 5 + 1))
    one_word = "x" * 1000
    assert extract_query([{"role": "user", "content": one_word}]) == "x" * 400


# -- provider text ------------------------------------------------------------------------------


def test_clean_text_and_make_result():
    assert clean_text("A <strong>bold</strong>&nbsp;&amp; <em>x</em>\n\n y") == "A bold & x y"
    assert clean_text(None) == ""
    assert make_result("t", "ftp://x", "s", None) is None
    assert make_result(None, "https://x.org", None, "") == SearchResult("https://x.org", "https://x.org", "", None)


# -- results block ------------------------------------------------------------------------------


def test_block_layout():
    block = results_block("q", [SearchResult("T", "https://t.org", "S", "2025"), SearchResult("U", "https://u.org", "", None)],
                          max_chars=6000, date="2025-01-01 (UTC)")
    assert block.endswith("\n\n[1] T\nURL: https://t.org\nPublished: 2025\nS\n\n[2] U\nURL: https://u.org\n")
    assert "searched the web on 2025-01-01 (UTC) for: q\n" in block
    assert "untrusted" in block


def test_short_snippets_give_their_space_to_long_ones():
    results = [SearchResult("a", "https://a.org", "short", None), SearchResult("b", "https://b.org", "L" * 700, None)]
    block = results_block("q", results, max_chars=1200, date="d")
    assert "short\n" in block and "L" * 400 in block and len(block) <= 1200


results_strategy = st.lists(st.builds(
    SearchResult,
    title=st.text(max_size=400),
    url=st.text(min_size=1, max_size=300).map(lambda s: "https://e.org/" + s),
    snippet=st.text(max_size=3000),
    published=st.none() | st.text(max_size=80),
), max_size=8)


@settings(max_examples=150, deadline=None)
@given(results=results_strategy, max_chars=st.integers(500, 8000), query=st.text(max_size=400))
def test_block_never_exceeds_max_chars(results, max_chars, query):
    assert len(results_block(query, results, max_chars=max_chars, date="2025-01-01 (UTC)")) <= max_chars


def test_results_that_cannot_fit_are_left_out_from_the_end():
    results = [SearchResult(f"t{i}", f"https://e{i}.org/" + "p" * 150, "s", None) for i in range(5)]
    block = results_block("q", results, max_chars=700, date="d")
    assert "[1] t0" in block and "[5] t4" not in block and len(block) <= 700


# -- injection --------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "expected"), [
    ("Sys", "Sys\n\nBLOCK"),
    ("   ", "BLOCK"),
    (None, "BLOCK"),
    ([{"type": "text", "text": "Sys"}], [{"type": "text", "text": "Sys"}, {"type": "text", "text": "BLOCK"}]),
])
def test_inject_system_content_shapes(content, expected):
    body = {"messages": [{"role": "system", "content": content}, {"role": "user", "content": "u"}]}
    inject_system(body, "BLOCK")
    assert body["messages"][0] == {"role": "system", "content": expected}


def test_remove_web_search_tools_variants():
    body = {"tools": None}
    remove_web_search_tools(body)
    assert body == {}
    body = {"tools": [{"type": "web_search_preview"}, {"type": "web_search_2025_08_26"}], "tool_choice": "auto"}
    remove_web_search_tools(body)
    assert body == {}
    keep = {"type": "function", "function": {"name": "f"}}
    body = {"tools": [keep, {"type": "web_search"}], "tool_choice": "auto", "parallel_tool_calls": False}
    remove_web_search_tools(body)
    assert body == {"tools": [keep], "tool_choice": "auto", "parallel_tool_calls": False}


# -- citations --------------------------------------------------------------------------------

R1 = SearchResult("Python", "https://docs.python.org/3/whatsnew/3.14.html", "", None)
R2 = SearchResult("PEP", "https://peps.python.org/pep-0745/", "", None)
R3 = SearchResult("Other", "https://www.example.com/x", "", None)


def test_citations_span_the_url_and_fall_back_to_domain():
    text = ("See [the notes](https://docs.python.org/3/whatsnew/3.14.html) and peps.python.org/pep-0745 "
            "as well as Example.com.")
    annotations = citations_for(text, [R3, R1, R2, R1])
    start = text.index("https://docs")
    bare = text.index("peps.python.org")
    assert annotations == [
        {"type": "url_citation", "url": R3.url, "title": "Other", "start_index": 0, "end_index": 0},
        {"type": "url_citation", "url": R1.url, "title": "Python", "start_index": start, "end_index": start + len(R1.url)},
        {"type": "url_citation", "url": R2.url, "title": "PEP", "start_index": bare,
         "end_index": bare + len("peps.python.org/pep-0745")},
    ]
    assert text[start:start + len(R1.url)] == R1.url


def test_citations_need_whole_urls_and_domains():
    domain_only = [{"type": "url_citation", "url": R1.url, "title": "Python", "start_index": 0, "end_index": 0}]
    assert citations_for("https://docs.python.org/3/whatsnew/3.14.html.bak is another page", [R1]) == domain_only
    assert citations_for("https://docs.python.org/3/whatsnew/3.14.htmlx", [R1]) == domain_only
    assert citations_for("Read https://docs.python.org/3/whatsnew/3.14.html.", [R1])[0]["start_index"] == 5
    assert citations_for("mypeps.python.org or peps.python.orgs", [R2]) == []
    assert citations_for("see https://example.org/peps.python.org/pep-0745/", [R2]) == []
    assert citations_for("see http://peps.python.org/pep-0745/", [R2])[0]["start_index"] == len("see http://")
    assert citations_for("nothing cited here", [R1, R2, R3]) == []
    assert citations_for("", []) == []


# -- cache ------------------------------------------------------------------------------------


def test_ttl_cache_expiry_and_lru_bound():
    now = [0.0]
    cache: TTLCache[int] = TTLCache(2, 10, clock=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    now[0] = 10
    assert cache.get("a") is None and len(cache) == 1


def test_ttl_cache_disabled():
    cache: TTLCache[int] = TTLCache(0, 10)
    cache.put("a", 1)
    assert cache.get("a") is None
    cache = TTLCache(5, 0)
    cache.put("a", 1)
    assert cache.get("a") is None
