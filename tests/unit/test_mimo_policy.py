"""One MiMo policy for both translators: the same request, spoken in Chat or in Responses,
reaches MiMo with the same thinking, effort, sampling, tool choice, added lines and web search."""

from __future__ import annotations

from typing import Any

import pytest

from mimo_asgi._seal import ReasoningSealer
from mimo_asgi.translate import _mimo
from mimo_asgi.translate.chat import chat_request_from_chat
from mimo_asgi.translate.responses_request import chat_request_from_responses

SEALER = ReasoningSealer("policy-test-key")


@pytest.fixture(autouse=True)
def _fresh_process_warnings():
    """Dropped fields are said once per process; each test starts as a fresh process would."""
    _mimo.WARNED_ONCE.clear()
    yield
    _mimo.WARNED_ONCE.clear()


PRO, FLASH = "mimo-v2.5-pro", "mimo-v2-flash"
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}}
SEARCH = {"type": "web_search", "max_keyword": 2, "limit": 5, "force_search": False,
          "user_location": {"type": "approximate", "country": "GB", "city": "London", "timezone": "Europe/London"}}


def chat_fn(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def responses_fn(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": {"type": "object"}}


def both(common: dict[str, Any], chat: dict[str, Any], responses: dict[str, Any], *, model: str = PRO,
         native: bool = True) -> tuple[Any, Any]:
    c = chat_request_from_chat({"model": "gpt-5.5", "messages": [{"role": "system", "content": "sys"},
                                                                 {"role": "user", "content": "q"}],
                                **common, **chat}, upstream_model=model, native_web_search=native)
    r = chat_request_from_responses({"model": "gpt-5.5", "instructions": "sys", "input": "q", **common, **responses},
                                    upstream_model=model, sealer=SEALER, native_web_search=native)
    return c, r


SHARED = ("model", "messages", "thinking", "reasoning_effort", "temperature", "top_p", "frequency_penalty",
          "presence_penalty", "stop", "max_completion_tokens", "response_format", "tools", "tool_choice",
          "parallel_tool_calls")


def same_policy(c: Any, r: Any) -> None:
    assert {k: c.body.get(k) for k in SHARED} == {k: r.body.get(k) for k in SHARED}


@pytest.mark.parametrize("effort", ["none", "minimal", "low", "medium", "high", "xhigh", "max"])
@pytest.mark.parametrize("model", [PRO, FLASH])
def test_effort_and_thinking(effort, model):
    c, r = both({}, {"reasoning_effort": effort}, {"reasoning": {"effort": effort}}, model=model)
    same_policy(c, r)


@pytest.mark.parametrize("model", [PRO, FLASH])
def test_sampling_while_thinking_is_the_same_and_never_silent(model):
    fields = {"temperature": 0.2, "top_p": 0.5, "frequency_penalty": 0.1, "presence_penalty": -0.1, "stop": ["END"]}
    c, r = both(fields, {"max_tokens": 300}, {"max_output_tokens": 300}, model=model)
    same_policy(c, r)
    dropped = "temperature" not in c.body
    assert dropped == (model == PRO)
    said = [w for t in (c, r) for w in t.warnings if w.startswith("temperature ")]
    assert len(said) == (1 if dropped else 0)  # once per process, whichever path came first


def test_the_json_schema_line_is_one_text():
    c, r = both({}, {"response_format": {"type": "json_schema", "json_schema": {"name": "thing", "schema": SCHEMA}}},
                {"text": {"format": {"type": "json_schema", "name": "thing", "schema": SCHEMA}}})
    same_policy(c, r)
    assert c.body["messages"][1] == {"role": "system", "content": _mimo.schema_line(SCHEMA, "thing")}


@pytest.mark.parametrize(("chat_choice", "responses_choice"), [
    ("required", "required"),
    ({"type": "function", "function": {"name": "b"}}, {"type": "function", "name": "b"}),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "a"}}, {"type": "web_search"}]}},
     {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}, {"type": "web_search"}]}),
    ({"type": "web_search"}, {"type": "web_search"}),
    ("none", "none"),
])
@pytest.mark.parametrize("native", [True, False])
def test_tool_choice_must_call_line_and_directive_place(chat_choice, responses_choice, native):
    c, r = both({"parallel_tool_calls": False},
                {"tools": [chat_fn("a"), chat_fn("b"), SEARCH], "tool_choice": chat_choice},
                {"tools": [responses_fn("a"), responses_fn("b"), SEARCH], "tool_choice": responses_choice},
                native=native)
    same_policy(c, r)
    assert (c.web_search is None) == (r.web_search is None)


def test_native_web_search_is_built_once_with_the_fields_mimo_documents():
    c, r = both({}, {"tools": [SEARCH]}, {"tools": [SEARCH]})
    same_policy(c, r)
    assert r.body["tools"] == [{"type": "web_search", "max_keyword": 2, "force_search": False, "limit": 5,
                                "user_location": {"type": "approximate", "country": "GB", "city": "London"}}]


# -- docs/request-fields.md lists every field each translator knows ----------------------------

import re  # noqa: E402
from pathlib import Path  # noqa: E402

from mimo_asgi.translate import chat as chat_module, responses_request  # noqa: E402

DOC = Path(__file__).parent.parent.parent / "docs" / "request-fields.md"


def _documented(section: str) -> set[str]:
    text = DOC.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_.]+)`", row)}


def test_the_request_fields_table_matches_what_the_translators_know():
    chat_known = set(chat_module._MAPPED) | set(chat_module._DROPPED)
    assert _documented("Chat Completions") == chat_known
    assert _documented("Responses") == set(responses_request._ACCEPTED)
