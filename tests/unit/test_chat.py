"""Chat Completions normalisation for MiMo, the chunk re-writer and the non-stream rewrite."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from mimo_asgi._sse import DONE, SSEDecoder
from mimo_asgi.translate import _mimo
from mimo_asgi.translate._mimo import MUST_CALL_ANY, must_call_line
from mimo_asgi.translate._tooldefs import Entry
from mimo_asgi.translate._tools import ToolSpec
from mimo_asgi.translate.chat import PLACEHOLDER_REASONING, chat_request_from_chat
from mimo_asgi.translate.chat_stream import ChatStream, chat_completion_for_client
from mimo_asgi.translate.errors import OpenAIError, invalid_request


@pytest.fixture(autouse=True)
def _fresh_process_warnings():
    """Dropped fields are said once per process; each test starts as a fresh process would."""
    _mimo.WARNED_ONCE.clear()
    yield
    _mimo.WARNED_ONCE.clear()


PRO = "mimo-v2.5-pro"  # thinking on by default, fixed sampling, no images
VISION = "mimo-v2.5"
FLASH = "mimo-v2-flash"  # thinking off by default
USER = [{"role": "user", "content": "hi"}]
FN = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
FN2 = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def body_of(model: str = PRO, **fields):
    return chat_request_from_chat({"model": "client-name", "messages": USER, **fields}, upstream_model=model).body


def rejected(fields: dict, model: str = PRO) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        chat_request_from_chat(fields, upstream_model=model)
    assert info.value.status == 400
    return info.value


# -- request: scalars ------------------------------------------------------------------------


def test_minimal_request():
    t = chat_request_from_chat({"model": "gpt-4o", "messages": USER}, upstream_model=PRO)
    assert t.body == {"model": PRO, "messages": USER, "thinking": {"type": "enabled"}}
    assert (t.include_usage, t.web_search, t.warnings) == (False, None, [])


def test_input_is_not_modified():
    body = {"model": "x", "messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}]}],
            "tools": [FN, {"type": "web_search"}], "tool_choice": "required", "stream": True}
    before = copy.deepcopy(body)
    chat_request_from_chat(body, upstream_model=PRO, native_web_search=False)
    assert body == before


@pytest.mark.parametrize(("effort", "sent"), [
    ("low", "low"), ("medium", "medium"), ("high", "high"), ("minimal", "low"), ("xhigh", "high"), ("max", "high"),
])
def test_reasoning_effort_clamped_to_what_mimo_accepts(effort, sent):
    body = body_of(reasoning_effort=effort)
    assert body["reasoning_effort"] == sent
    assert body["thinking"] == {"type": "enabled"}


def test_directive_lines_go_after_the_leading_system_messages_in_one_message():
    msgs = [{"role": "system", "content": "a"}, {"role": "developer", "content": "b"}, *USER,
            {"role": "system", "content": "late"}]
    body = body_of(messages=msgs, tools=[FN], tool_choice="required",
                   response_format={"type": "json_schema", "json_schema": {"schema": {}}})
    out = body["messages"]
    assert [m["content"] for m in out[:2]] == ["a", "b"] and out[3:] == [USER[0], msgs[3]]
    assert out[2]["role"] == "system" and out[2]["content"].count("\n\n") == 1
    assert "JSON Schema" in out[2]["content"] and "`get_weather`" in out[2]["content"]


def test_explicit_effort_turns_thinking_on_even_where_it_is_off_by_default():
    body = body_of(FLASH, reasoning_effort="medium")
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == "medium"


def test_reasoning_effort_none_disables_thinking_and_is_not_sent():
    body = body_of(reasoning_effort="none")
    assert body["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in body


def test_unknown_reasoning_effort_is_a_400():
    assert rejected({"messages": USER, "reasoning_effort": "turbo"}).param == "reasoning_effort"


@pytest.mark.parametrize(("model", "kind"), [(PRO, "enabled"), (FLASH, "disabled")])
def test_thinking_set_explicitly_from_the_model_default(model, kind):
    assert body_of(model)["thinking"] == {"type": kind}


def test_client_thinking_respected_and_effort_dropped_when_off():
    body = body_of(thinking={"type": "disabled", "budget_tokens": 9}, reasoning_effort="high", temperature=0.2)
    assert body["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in body
    assert body["temperature"] == 0.2
    assert body_of(FLASH, thinking={"type": "enabled"})["thinking"] == {"type": "enabled"}


@pytest.mark.parametrize("thinking", [{"type": "auto"}, "enabled", {"kind": "enabled"}])
def test_invalid_thinking_is_a_400(thinking):
    assert rejected({"messages": USER, "thinking": thinking}).param == "thinking"


def test_sampling_dropped_only_when_thinking_fixes_it():
    assert "temperature" not in body_of(PRO, temperature=0.3, top_p=0.5)
    assert "top_p" not in body_of(PRO, temperature=0.3, top_p=0.5)
    assert body_of(FLASH, temperature=0.3, top_p=0.5)["temperature"] == 0.3
    assert body_of(PRO, reasoning_effort="none", top_p=0.5)["top_p"] == 0.5


def test_max_tokens_renamed_and_max_completion_tokens_wins():
    assert body_of(max_tokens=100)["max_completion_tokens"] == 100
    assert "max_tokens" not in body_of(max_tokens=100)
    assert body_of(max_tokens=100, max_completion_tokens=200)["max_completion_tokens"] == 200


@pytest.mark.parametrize("value", [0, -1, "10", True, 1.5])
def test_bad_max_tokens_is_a_400(value):
    assert rejected({"messages": USER, "max_tokens": value}).param == "max_tokens"


def test_n_above_one_is_a_400_and_n_one_is_dropped():
    assert rejected({"messages": USER, "n": 2}).param == "n"
    assert "n" not in body_of(n=1)


def test_passthrough_fields_kept_and_nulls_dropped():
    body = body_of(FLASH, stop=["x"], frequency_penalty=0.5, presence_penalty=-1, temperature=None)
    assert (body["stop"], body["frequency_penalty"], body["presence_penalty"]) == (["x"], 0.5, -1)
    assert "temperature" not in body


def test_fields_with_no_mimo_place_are_dropped_and_said_once_per_process():
    body = {"messages": USER, "user": "u", "metadata": {"a": "b"}, "store": True, "seed": 1, "service_tier": "auto",
            "prediction": {}, "modalities": ["text"], "logprobs": False, "top_logprobs": 0, "prompt_cache_key": "k",
            "some_future_field": 1}
    t = chat_request_from_chat(body, upstream_model=PRO)
    assert set(t.body) == {"model", "messages", "thinking"}
    said = [w.split()[0] for w in t.warnings]
    assert said == ["seed", "user", "metadata", "store", "prediction",
                    "ignored"]  # service_tier auto, modalities text, logprobs false ask for nothing
    assert t.warnings[-1] == "ignored fields MiMo does not support: some_future_field"
    again = chat_request_from_chat(body, upstream_model=PRO).warnings
    assert again == ["ignored fields MiMo does not support: some_future_field"]  # the known ones: said once


@pytest.mark.parametrize(("fields", "param"), [
    ({"logprobs": True}, "logprobs"), ({"top_logprobs": 2}, "top_logprobs"), ({"logprobs": "yes"}, "logprobs"),
    ({"top_logprobs": 21}, "top_logprobs"), ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"modalities": ["text", "audio"]}, "modalities"), ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
])
def test_fields_asking_for_what_mimo_cannot_give_are_400s_naming_them(fields, param):
    err = rejected({"messages": USER, **fields})
    assert err.param == param


def test_stream_always_asks_upstream_for_usage_and_remembers_the_client_choice():
    for options, asked in [(None, False), ({}, False), ({"include_usage": False}, False),
                           ({"include_usage": True}, True), ({"include_obfuscation": True}, False)]:
        t = chat_request_from_chat({"messages": USER, "stream": True, "stream_options": options},
                                   upstream_model=PRO)
        assert t.body["stream"] is True
        assert t.body["stream_options"] == {"include_usage": True}
        assert t.include_usage is asked


def test_non_stream_sends_no_stream_options():
    body = body_of(stream=False, stream_options={"include_usage": True})
    assert "stream" not in body and "stream_options" not in body
    assert rejected({"messages": USER, "stream": "yes"}).param == "stream"


def test_response_format():
    assert body_of(response_format={"type": "json_object"})["response_format"] == {"type": "json_object"}
    assert "response_format" not in body_of(response_format={"type": "text"})
    body = body_of(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][1:] == USER
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].endswith('{"type":"object"}')
    assert rejected({"messages": USER, "response_format": {"type": "xml"}}).param == "response_format"


# -- request: tools --------------------------------------------------------------------------


def test_function_tools_strict_null_dropped_bool_kept():
    tools = [{"type": "function", "function": {"name": "a", "strict": None, "description": None}},
             {"type": "function", "function": {"name": "b", "strict": False, "description": "d"}}]
    body = body_of(tools=tools)
    assert body["tools"] == [{"type": "function", "function": {"name": "a"}},
                             {"type": "function", "function": {"name": "b", "description": "d", "strict": False}}]
    assert body["tool_choice"] == "auto"


def test_duplicate_function_names_deduped():
    t = chat_request_from_chat({"messages": USER, "tools": [FN, FN]}, upstream_model=PRO)
    assert t.body["tools"] == [FN]
    assert "duplicate" in t.warnings[0]


def test_custom_tool_is_a_400_naming_the_tool():
    err = rejected({"messages": USER, "tools": [FN, {"type": "custom", "custom": {"name": "apply_patch"}}]})
    assert err.param == "tools[1]"
    assert "not supported" in err.message and "Chat Completions" in err.message


@pytest.mark.parametrize(("tools", "param"), [("x", "tools"), ([1], "tools[0]"),
                                              ([{"type": "function", "function": {}}], "tools[0].function.name")])
def test_invalid_tools_are_400s(tools, param):
    assert rejected({"messages": USER, "tools": tools}).param == param


def test_unknown_tool_types_dropped_with_a_warning():
    t = chat_request_from_chat({"messages": USER, "tools": [{"type": "file_search"}]}, upstream_model=PRO)
    assert "tools" not in t.body and "tool_choice" not in t.body
    assert "file_search" in t.warnings[0]


def test_web_search_native_keeps_only_mimo_options():
    search = {"type": "web_search", "max_keyword": 2, "force_search": True, "limit": 5, "search_context_size": "low",
              "user_location": {"type": "approximate", "country": "CN", "city": "Beijing", "timezone": "x"}}
    t = chat_request_from_chat({"messages": USER, "tools": [FN, search]}, upstream_model=PRO)
    assert t.body["tools"] == [FN, {"type": "web_search", "max_keyword": 2, "force_search": True, "limit": 5,
                                    "user_location": {"type": "approximate", "country": "CN", "city": "Beijing"}}]
    assert t.web_search is None


def test_web_search_removed_when_native_not_allowed_and_tools_deleted_not_nulled():
    search = {"type": "web_search", "limit": 3}
    t = chat_request_from_chat({"messages": USER, "tools": [search], "tool_choice": "auto"},
                               upstream_model=PRO, native_web_search=False)
    assert t.web_search == search
    assert "tools" not in t.body and "tool_choice" not in t.body
    t = chat_request_from_chat({"messages": USER, "tools": [FN, search]}, upstream_model=PRO, native_web_search=False)
    assert t.body["tools"] == [FN]


def test_web_search_options_become_the_web_search_tool():
    options = {"user_location": {"type": "approximate", "approximate": {"country": "GB", "city": "London"}}}
    body = body_of(web_search_options=options)
    assert body["tools"] == [{"type": "web_search",
                              "user_location": {"type": "approximate", "country": "GB", "city": "London"}}]


def test_empty_tools_never_sent():
    body = body_of(tools=[], tool_choice="auto", parallel_tool_calls=True)
    assert "tools" not in body and "tool_choice" not in body and "parallel_tool_calls" not in body
    assert body_of(tools=[FN], parallel_tool_calls=False)["parallel_tool_calls"] is False


def test_tool_choice_none_omits_tools():
    t = chat_request_from_chat({"messages": USER, "tools": [FN, {"type": "web_search"}], "tool_choice": "none"},
                               upstream_model=PRO, native_web_search=False)
    assert "tools" not in t.body and "tool_choice" not in t.body
    assert t.web_search is None
    assert t.body["messages"] == USER


def test_tool_choice_required_keeps_tools_sends_auto_and_asks_in_words():
    body = body_of(tools=[FN, FN2], tool_choice="required")
    assert body["tools"] == [FN, FN2]
    assert body["tool_choice"] == "auto"
    assert body["messages"][1:] == USER
    assert body["messages"][0] == {"role": "system", "content": MUST_CALL_ANY}


@pytest.mark.parametrize("choice", [{"type": "function", "function": {"name": "get_time"}},
                                    {"type": "function", "name": "get_time"}])
def test_named_tool_choice_narrows_to_that_function(choice):
    body = body_of(tools=[FN, FN2, {"type": "web_search"}], tool_choice=choice)
    assert body["tools"] == [FN2]
    assert body["tool_choice"] == "auto"
    assert body["messages"][0]["content"] == must_call_line([Entry(FN2, "function", ToolSpec("function", "get_time"))])
    assert "`get_time`" in body["messages"][0]["content"]


def test_named_tool_choice_for_a_missing_function_is_a_400():
    choice = {"type": "function", "function": {"name": "nope"}}
    assert rejected({"messages": USER, "tools": [FN], "tool_choice": choice}).param == "tool_choice"


def test_allowed_tools_narrow_and_mode_decides_the_line():
    chat_shape = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_time"}}, {"type": "web_search"}]}}
    body = body_of(tools=[FN, FN2, {"type": "web_search"}], tool_choice=chat_shape)
    assert body["tools"] == [FN2, {"type": "web_search"}]
    assert body["messages"][0] == {"role": "system", "content": MUST_CALL_ANY}
    responses_shape = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]}
    body = body_of(tools=[FN, FN2], tool_choice=responses_shape)
    assert body["tools"] == [FN] and body["messages"] == USER


def test_required_without_native_search_does_not_ask_for_web_search():
    t = chat_request_from_chat({"messages": USER, "tools": [FN, {"type": "web_search"}], "tool_choice": "required"},
                               upstream_model=PRO, native_web_search=False)
    assert "web_search" not in t.body["messages"][0]["content"]
    assert t.web_search == {"type": "web_search"}


def test_tool_choice_web_search_forces_the_search():
    body = body_of(tools=[FN, {"type": "web_search", "limit": 2}], tool_choice={"type": "web_search"})
    assert body["tools"] == [{"type": "web_search", "limit": 2, "force_search": True}]
    assert body["messages"] == USER


def test_invalid_tool_choice_is_a_400():
    assert rejected({"messages": USER, "tools": [FN], "tool_choice": "sometimes"}).param == "tool_choice"
    assert rejected({"messages": USER, "tools": [FN], "tool_choice": {"type": "custom"}}).param == "tool_choice.name"


# -- request: messages -----------------------------------------------------------------------


def test_developer_becomes_system_and_list_content_flattened():
    msgs = [{"role": "developer", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "system", "content": "c", "name": "ignored"}, *USER]
    assert body_of(messages=msgs)["messages"] == [{"role": "system", "content": "a\nb"},
                                                  {"role": "system", "content": "c"}, *USER]


def test_assistant_null_content_with_tool_calls_is_omitted():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    msgs = [*USER, {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": "think"},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    out = body_of(messages=msgs)["messages"]
    assert out[1] == {"role": "assistant", "tool_calls": [call], "reasoning_content": "think"}


def test_assistant_null_content_without_tool_calls_becomes_empty_string():
    msgs = [*USER, {"role": "assistant", "content": None, "refusal": "no"}, *USER]
    assert body_of(messages=msgs)["messages"][1] == {"role": "assistant", "content": ""}


def test_tool_call_turn_without_reasoning_gets_a_placeholder_only_when_thinking():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    msgs = [*USER, {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": "r"}, {"role": "assistant", "content": "done"}]
    on = body_of(messages=msgs)["messages"]
    assert on[1]["reasoning_content"] == PLACEHOLDER_REASONING
    assert "reasoning_content" not in on[3]
    off = body_of(messages=msgs, reasoning_effort="none")["messages"]
    assert "reasoning_content" not in off[1]


def test_invalid_historical_arguments_become_empty_object():
    calls = [{"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": a}}
             for i, a in enumerate(['{"x": 1', "", None, {"y": 2}, '{"ok": true}'])]
    out = body_of(messages=[*USER, {"role": "assistant", "tool_calls": calls}])["messages"][1]
    assert [c["function"]["arguments"] for c in out["tool_calls"]] == ["{}", "{}", "{}", '{"y":2}', '{"ok": true}']


def test_tool_list_content_flattened_to_a_string():
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    msgs = [*USER, {"role": "assistant", "tool_calls": [call], "reasoning_content": "r"},
            {"role": "tool", "tool_call_id": "c", "content": [
        {"type": "text", "text": "line 1"}, {"type": "text", "text": ""},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}, {"type": "text", "text": "line 2"}]}]
    t = chat_request_from_chat({"messages": msgs}, upstream_model=VISION)
    assert t.body["messages"][2] == {"role": "tool", "tool_call_id": "c",
                                     "content": "line 1\n[image_url content omitted]\nline 2"}
    assert t.warnings


def test_empty_text_parts_dropped():
    msgs = [{"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "q"}]}]
    assert body_of(messages=msgs)["messages"] == [{"role": "user", "content": [{"type": "text", "text": "q"}]}]


def test_images_kept_for_vision_models_with_a_text_part():
    msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": "https://x/a.png"}]}]
    out = chat_request_from_chat({"messages": msgs}, upstream_model=VISION).body["messages"]
    assert out == [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}},
                                                {"type": "text", "text": " "}]}]


def test_images_reach_models_not_known_to_be_text_only():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                         {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]
    for model in ("mimo-v2.6-flash", "mimo-v3-omni"):
        content = chat_request_from_chat({"messages": msgs}, upstream_model=model).body["messages"][0]["content"]
        assert content == msgs[0]["content"]


def test_images_for_a_text_only_model_are_a_400_naming_the_model():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is this"},
                                         {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]
    err = rejected({"model": "gpt-5.5", "messages": msgs})
    assert err.param == "messages[0].content[1]" and err.code == "image_input_not_supported"
    assert "'gpt-5.5'" in err.message and PRO in err.message
    assert PRO in rejected({"model": PRO, "messages": msgs}).message


def test_audio_reaches_models_not_known_to_be_text_only_and_is_a_400_for_the_others():
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    msgs = [{"role": "user", "content": [audio]}]
    body = chat_request_from_chat({"messages": msgs}, upstream_model=VISION).body
    assert body["messages"] == [{"role": "user", "content": [audio, {"type": "text", "text": " "}]}]
    err = rejected({"model": "gpt-5.5", "messages": msgs})
    assert err.param == "messages[0].content[0]" and err.code == "audio_input_not_supported" and PRO in err.message


@pytest.mark.parametrize(("messages", "param"), [
    (None, "messages"), ("hi", "messages"), ([], "messages"), (["hi"], "messages[0]"),
    ([{"content": "x"}], "messages[0].role"), ([{"role": "wizard", "content": "x"}], "messages[0].role"),
    ([{"role": "tool", "content": "x"}], "messages[0].tool_call_id"),
    ([{"role": "user", "content": 5}], "messages[0].content"),
    ([{"role": "user", "content": ["x"]}], "messages[0].content[0]"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content[0].image_url"),
    ([{"role": "assistant", "tool_calls": [{"id": "c"}]}], "messages[0].tool_calls[0]"),
    ([{"role": "assistant", "tool_calls": {}}], "messages[0].tool_calls"),
])
def test_invalid_shapes_are_400s_with_param(messages, param):
    assert rejected({"messages": messages}, model=VISION).param == param


@pytest.mark.parametrize("body", [
    {}, {"messages": USER, "tools": [{"type": None}]}, {"messages": USER, "tool_choice": {"type": "function"}},
    {"messages": USER, "stream_options": "x", "stream": True}, {"messages": [{"role": "user", "content": [{}]}]},
    {"messages": USER, "web_search_options": {"user_location": "here"}}, {"messages": USER, "response_format": 1},
    {"messages": USER, "tools": [FN], "tool_choice": {"type": "allowed_tools", "tools": [{"type": ["x"]}, 3]}},
    {"messages": USER, "tools": [FN], "tool_choice": {"type": "function", "function": {"name": {"a": 1}}}},
])
def test_odd_inputs_raise_only_openai_errors(body):
    try:
        chat_request_from_chat(body, upstream_model=PRO)
    except OpenAIError:
        pass


def test_non_object_body_is_a_400():
    rejected([])  # type: ignore[arg-type]


# -- stream ----------------------------------------------------------------------------------


def chunk(delta=None, finish=None, usage=None, choices=True, model="mimo-v2.5-pro"):
    out = {"id": "8b51", "object": "chat.completion.chunk", "created": 1, "model": model}
    out["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage is not None:
        out["usage"] = usage
    return out


USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
         "completion_tokens_details": {"reasoning_tokens": 3}, "prompt_tokens_details": {"cached_tokens": 2}}


def parse(raw: bytes) -> list:
    decoder = SSEDecoder()
    return [e.data if e.data == "[DONE]" else orjson.loads(e.data) for e in decoder.feed(raw) + decoder.close()]


def run(stream: ChatStream, chunks: list[dict], *, saw_done: bool = True) -> list:
    return parse(b"".join(stream.feed(c) for c in chunks) + stream.finish(saw_done=saw_done))


UPSTREAM = [
    chunk({"role": "assistant", "reasoning_content": "hmm"}),
    chunk({"content": "Hel"}),
    chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                           "function": {"name": "f", "arguments": ""}}]}),
    chunk({"content": "lo"}, finish="stop", usage=None),
    chunk(choices=False, usage=USAGE),
]


def test_stream_rewrites_model_keeps_reasoning_and_usage_when_asked():
    stream = ChatStream(model="my-alias", include_usage=True)
    out = run(stream, copy.deepcopy(UPSTREAM))
    assert out[-1] == "[DONE]" and out.count("[DONE]") == 1
    assert [c["model"] for c in out[:-1]] == ["my-alias"] * 5
    assert out[0]["choices"][0]["delta"]["reasoning_content"] == "hmm"
    assert out[2]["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1"
    assert out[4] == dict(UPSTREAM[4], model="my-alias")
    assert (stream.usage, stream.finish_reason, stream.done, stream.emitted_content) == (USAGE, "stop", True, True)


def test_stream_suppresses_usage_the_client_did_not_ask_for():
    upstream = copy.deepcopy(UPSTREAM)
    upstream[1]["usage"] = None
    upstream[3]["usage"] = USAGE  # usage riding on the finish chunk
    stream = ChatStream(model="m", include_usage=False)
    out = run(stream, upstream)
    assert len(out) == 5 and out[-1] == "[DONE]"
    assert all("usage" not in c for c in out[:-1])
    assert stream.usage == USAGE


def test_each_chunk_is_one_sse_event():
    raw = ChatStream(model="m", include_usage=True).feed(chunk({"content": "a\nb"}))
    assert raw.startswith(b"data: {") and raw.endswith(b"}\n\n") and raw.count(b"\n") == 2


def test_finish_without_done_but_with_finish_reason_is_normal():
    out = run(ChatStream(model="m", include_usage=False), [chunk({"content": "x"}, finish="length")], saw_done=False)
    assert out[-1] == "[DONE]" and "error" not in out[0]


def test_truncated_stream_ends_with_an_error_chunk_then_done():
    stream = ChatStream(model="m", include_usage=False)
    out = run(stream, [chunk({"content": "x"})], saw_done=False)
    assert out[-1] == "[DONE]" and out.count("[DONE]") == 1
    assert out[-2]["error"]["code"] == "stream_truncated"
    assert stream.done and stream.finish_reason is None


def test_done_without_finish_reason_is_not_an_error():
    assert run(ChatStream(model="m", include_usage=False), [], saw_done=True) == ["[DONE]"]


def test_in_band_error_becomes_an_error_chunk_then_done_and_ends_the_stream():
    stream = ChatStream(model="m", include_usage=False)
    first = stream.feed(chunk({"content": "x"}))
    raw = stream.feed({"error": {"code": "429", "message": "Too many requests", "param": "", "type": ""}})
    assert stream.done
    assert stream.feed(chunk({"content": "late"})) == b""
    assert stream.finish(saw_done=True) == b""
    out = parse(first + raw)
    assert out[1]["error"]["code"] == "rate_limit_exceeded" and out[2] == "[DONE]" and len(out) == 3


def test_fail_is_terminal_exactly_once():
    stream = ChatStream(model="m", include_usage=False)
    raw = stream.fail(invalid_request("bad", param="x"))
    assert parse(raw) == [{"error": {"message": "bad", "type": "invalid_request_error", "param": "x",
                                     "code": None}}, "[DONE]"]
    assert stream.fail(invalid_request("again")) == b"" and stream.finish(saw_done=False) == b""
    stream = ChatStream(model="m", include_usage=False)
    assert stream.finish(saw_done=True) == DONE and stream.fail(invalid_request("late")) == b""


def test_non_object_chunk_fails_the_stream():
    stream = ChatStream(model="m", include_usage=False)
    out = parse(stream.feed(["not", "a", "chunk"]))  # type: ignore[arg-type]
    assert out[0]["error"]["code"] == "upstream_error" and out[1] == "[DONE]" and stream.done


def test_emitted_content_only_for_real_deltas():
    stream = ChatStream(model="m", include_usage=True)
    stream.feed(chunk({"role": "assistant", "content": ""}))
    stream.feed(chunk(choices=False, usage=USAGE))
    assert not stream.emitted_content
    stream.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}))
    assert stream.emitted_content


# -- non-stream ------------------------------------------------------------------------------


COMPLETION = {
    "id": "8b51f9e0515949cb8207fbd35ea6ea5c", "object": "chat.completion", "created": 1, "model": "mimo-v2.5-pro",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "hi", "reasoning_content": "because", "tool_calls": None}}],
    "usage": USAGE,
}


def test_non_stream_rewrites_model_and_keeps_details():
    before = copy.deepcopy(COMPLETION)
    out = chat_completion_for_client(COMPLETION, model="my-alias")
    assert COMPLETION == before
    assert out["model"] == "my-alias" and out["usage"] == USAGE and out["id"] == COMPLETION["id"]
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "hi", "reasoning_content": "because"}


def test_non_stream_content_never_null_without_tool_calls_and_kept_with_them():
    body = copy.deepcopy(COMPLETION)
    body["choices"][0]["message"]["content"] = None
    assert chat_completion_for_client(body, model="m")["choices"][0]["message"]["content"] == ""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body["choices"][0]["message"]["tool_calls"] = [call]
    message = chat_completion_for_client(body, model="m")["choices"][0]["message"]
    assert message["tool_calls"] == [call] and message["content"] is None


def test_non_stream_errors():
    with pytest.raises(OpenAIError) as info:
        chat_completion_for_client({"error": {"code": "400", "message": "Param Incorrect", "param": "bad"}}, model="m")
    assert info.value.status == 400 and "bad" in info.value.message
    for body in ([], {"object": "chat.completion"}):
        with pytest.raises(OpenAIError) as info:
            chat_completion_for_client(body, model="m")  # type: ignore[arg-type]
        assert info.value.status == 502


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(
        ["", "x", "auto", "none", "required", "function", "text", "image_url", "user", "assistant", "tool",
         "system", "developer", "web_search", "custom", "allowed_tools", "enabled", "high", "json_schema"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["type", "role", "content", "text", "name", "function", "tools", "mode", "tool_calls", "id", "arguments",
         "image_url", "url", "tool_call_id", "json_schema", "schema", "user_location", "approximate"]), inner, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(["messages", "tools", "tool_choice", "thinking", "reasoning_effort", "stream",
                         "stream_options", "max_tokens", "n", "response_format", "web_search_options", "top_p"])


_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "tool", "system", "developer"])},
    optional={"content": _JSON | st.just("text"), "tool_calls": _JSON, "tool_call_id": st.just("c") | _JSON,
              "reasoning_content": _JSON},
)
_FIELDS = st.dictionaries(_KEYS.filter(lambda k: k != "messages"), _JSON | st.just([FN]) | st.just(FN), max_size=5)


@settings(max_examples=500, deadline=None)
@given(st.lists(_MESSAGE, min_size=1, max_size=4), _FIELDS, st.sampled_from([PRO, VISION, FLASH]), st.booleans())
def test_any_json_object_raises_only_openai_errors(messages, fields, model, native):
    try:
        t = chat_request_from_chat({"messages": messages, **fields}, upstream_model=model, native_web_search=native)
    except OpenAIError as err:
        assert err.status == 400 and err.param
        event("rejected")
        return
    event("accepted")
    orjson.dumps(t.body)
    assert t.body.get("tools") != [] and all(m.get("content", "") is not None for m in t.body["messages"])
    assert all(m["role"] in ("system", "user", "assistant", "tool") for m in t.body["messages"])


# -- legacy functions and repaired history (issue 19 item 12) ----------------------------------

from mimo_asgi.testing._validate import Host, validate  # noqa: E402
from mimo_asgi.translate._mimo import NO_OUTPUT  # noqa: E402
from mimo_asgi.translate.chat_stream import CallShape  # noqa: E402

HOST = Host(models=frozenset({PRO, VISION, FLASH}), web_search_plugin=True)
LEGACY_FN = {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}


def mimo_accepts(body: dict) -> None:
    rejection = validate(orjson.loads(orjson.dumps(body)), HOST)
    assert rejection is None, (rejection.status, rejection.body)


def test_legacy_functions_become_tools_answered_in_the_legacy_shape():
    t = chat_request_from_chat({"messages": USER, "functions": [LEGACY_FN]}, upstream_model=PRO)
    assert t.body["tools"] == [{"type": "function", "function": LEGACY_FN}] and t.body["tool_choice"] == "auto"
    assert t.body["parallel_tool_calls"] is False  # a legacy answer holds one call
    assert t.calls == CallShape(legacy=True, limit=1)
    assert chat_request_from_chat({"messages": USER, "tools": [FN]}, upstream_model=PRO).calls == CallShape()


def test_legacy_function_call_is_the_tool_choice():
    named = chat_request_from_chat({"messages": USER, "functions": [LEGACY_FN, {"name": "other"}],
                                    "function_call": {"name": "get_weather"}}, upstream_model=PRO).body
    assert [t["function"]["name"] for t in named["tools"]] == ["get_weather"]
    assert "`get_weather`" in named["messages"][0]["content"]
    none = chat_request_from_chat({"messages": USER, "functions": [LEGACY_FN], "function_call": "none"},
                                  upstream_model=PRO).body
    assert "tools" not in none


@pytest.mark.parametrize(("fields", "param"), [
    ({"functions": [LEGACY_FN], "tools": [FN]}, "functions"),
    ({"function_call": "auto"}, "function_call"),
    ({"functions": [LEGACY_FN], "function_call": {"name": "nope"}}, "function_call"),
    ({"functions": [LEGACY_FN], "function_call": "required"}, "function_call"),
    ({"functions": [{"description": "no name"}]}, "functions[0].name"),
    ({"functions": {"name": "x"}}, "functions"),
])
def test_legacy_mistakes_are_400s_naming_the_field(fields, param):
    assert rejected({"messages": USER, **fields}).param == param


def test_legacy_history_pairs_each_function_result_with_its_call():
    msgs = [*USER, {"role": "assistant", "content": None, "function_call": {"name": "get_weather",
                                                                             "arguments": '{"city": "Oslo"}'}},
            {"role": "function", "name": "get_weather", "content": "-5C"}, {"role": "user", "content": "and now?"}]
    body = chat_request_from_chat({"messages": msgs, "functions": [LEGACY_FN]}, upstream_model=PRO).body
    mimo_accepts(body)
    assert body["messages"][1]["tool_calls"] == [{"id": "call_legacy_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Oslo"}'}}]
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call_legacy_1", "content": "-5C"}


CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def _assistant(*calls: dict) -> dict:
    return {"role": "assistant", "content": "", "tool_calls": list(calls), "reasoning_content": "r"}


@pytest.mark.parametrize(("history", "expected_roles", "warned"), [
    ([_assistant(CALL), *USER], ["user", "assistant", "tool", "user"], True),  # a call without its result
    ([{"role": "tool", "tool_call_id": "call_9", "content": "stray"}], ["user", "user"], True),  # an orphan result
    ([_assistant(CALL), *USER, {"role": "tool", "tool_call_id": "call_1", "content": "late"}],
     ["user", "assistant", "tool", "user"], False),  # a result after another message moves back to its call
    ([_assistant(CALL), {"role": "tool", "tool_call_id": "call_1", "content": "a"},
      {"role": "tool", "tool_call_id": "call_1", "content": "again"}], ["user", "assistant", "tool", "user"], True),
    ([_assistant(CALL), {"role": "tool", "tool_call_id": "call_1", "content": "a"}, _assistant(CALL)],
     ["user", "assistant", "tool", "assistant"], True),  # a call id used again is dropped there
    ([_assistant(CALL, CALL), {"role": "tool", "tool_call_id": "call_1", "content": "a"}],
     ["user", "assistant", "tool"], True),
    ([{"role": "function", "name": "get_weather", "content": "no call made"}], ["user", "user"], True),
])
def test_tool_history_is_repaired_never_forwarded_broken(history, expected_roles, warned):
    t = chat_request_from_chat({"messages": [*USER, *history], "tools": [FN]}, upstream_model=PRO)
    mimo_accepts(t.body)
    assert [m["role"] for m in t.body["messages"]] == expected_roles
    assert bool(t.warnings) == warned and all(w.startswith("messages[") for w in t.warnings)


def test_repairs_keep_what_the_client_sent():
    msgs = [*USER, _assistant(CALL, {**CALL, "id": "call_2"}), {"role": "tool", "tool_call_id": "call_2", "content": "B"},
            {"role": "tool", "tool_call_id": "call_9", "content": "stray"}]
    out = chat_request_from_chat({"messages": msgs}, upstream_model=PRO).body["messages"]
    assert out[2:] == [{"role": "tool", "tool_call_id": "call_1", "content": NO_OUTPUT},
                       {"role": "tool", "tool_call_id": "call_2", "content": "B"},
                       {"role": "user", "content": "Output of tool call call_9:\nstray"}]


_ROLE_MSGS = st.one_of(
    st.just({"role": "user", "content": "u"}),
    st.builds(lambda ids: _assistant(*({**CALL, "id": i} for i in ids)), st.lists(st.sampled_from(["a", "b", "c"]),
                                                                                  min_size=1, max_size=2)),
    st.builds(lambda i: {"role": "tool", "tool_call_id": i, "content": "out"}, st.sampled_from(["a", "b", "c", "z"])),
    st.builds(lambda n: {"role": "assistant", "function_call": {"name": n, "arguments": "{}"}},
              st.sampled_from(["get_weather", "f"])),
    st.builds(lambda n: {"role": "function", "name": n, "content": "r"}, st.sampled_from(["get_weather", "f"])),
    st.just({"role": "assistant", "content": "said"}),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROLE_MSGS, min_size=1, max_size=7), st.sampled_from([PRO, FLASH]))
def test_any_tool_history_reaches_mimo_in_a_shape_it_accepts(messages, model):
    t = chat_request_from_chat({"messages": [*USER, *messages], "tools": [FN]}, upstream_model=model)
    mimo_accepts(t.body)


# -- answers in the legacy shape, and one call when parallel calls are off ----------------------


def call_chunk(index, call_id=None, name=None, arguments="", finish=None):
    fragment = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        fragment.update(id=call_id, type="function")
        fragment["function"]["name"] = name
    return chunk({"tool_calls": [fragment]}, finish=finish)


TWO_CALLS = [
    chunk({"role": "assistant", "reasoning_content": "two calls"}),
    call_chunk(0, "call_a", "get_weather", '{"city":'),
    call_chunk(1, "call_b", "get_time", '{"tz":'),
    call_chunk(0, arguments=' "Oslo"}'),
    call_chunk(1, arguments=' "UTC"}'),
    chunk({}, finish="tool_calls"),
]


def test_a_legacy_stream_answers_one_function_call():
    out = run(ChatStream(model="m", include_usage=False, calls=CallShape(legacy=True, limit=1)),
              copy.deepcopy(TWO_CALLS))
    deltas = [c["choices"][0]["delta"] for c in out[:-1]]
    assert all("tool_calls" not in d for d in deltas)
    calls = [d["function_call"] for d in deltas if "function_call" in d]
    assert calls == [{"name": "get_weather", "arguments": '{"city":'}, {"arguments": ' "Oslo"}'}]
    assert out[-2]["choices"][0]["finish_reason"] == "function_call" and out[-1] == "[DONE]"
    assert len(out) == 5  # the chunks holding only the dropped call are not sent


def test_one_call_when_parallel_calls_are_off():
    stream = ChatStream(model="m", include_usage=False, calls=CallShape(limit=1))
    out = run(stream, copy.deepcopy(TWO_CALLS))
    fragments = [f for c in out[:-1] for f in c["choices"][0]["delta"].get("tool_calls", ())]
    assert {f["index"] for f in fragments} == {0} and fragments[0]["id"] == "call_a"
    assert "".join(f["function"]["arguments"] for f in fragments) == '{"city": "Oslo"}'
    assert out[-2]["choices"][0]["finish_reason"] == "tool_calls" and stream.finish_reason == "tool_calls"


def test_the_first_call_is_kept_whatever_index_mimo_gives_it():
    upstream = [call_chunk(3, "call_x", "get_time", "{}"), call_chunk(0, "call_y", "get_weather", "{}"),
                chunk({}, finish="tool_calls")]
    out = run(ChatStream(model="m", include_usage=False, calls=CallShape(limit=1)), upstream)
    fragments = [f for c in out[:-1] for f in c["choices"][0]["delta"].get("tool_calls", ())]
    assert [(f["index"], f["id"]) for f in fragments] == [(0, "call_x")]


def test_non_stream_legacy_and_one_call_answers():
    two = [CALL, {**CALL, "id": "call_2", "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'}}]
    body = copy.deepcopy(COMPLETION)
    body["choices"][0].update(finish_reason="tool_calls",
                              message={"role": "assistant", "content": None, "tool_calls": two})
    legacy = chat_completion_for_client(body, model="m", calls=CallShape(legacy=True, limit=1))["choices"][0]
    assert legacy["finish_reason"] == "function_call"
    assert legacy["message"] == {"role": "assistant", "content": None,
                                 "function_call": {"name": "get_weather", "arguments": "{}"}}
    one = chat_completion_for_client(body, model="m", calls=CallShape(limit=1))["choices"][0]
    assert one["message"]["tool_calls"] == [CALL] and one["finish_reason"] == "tool_calls"
    assert chat_completion_for_client(body, model="m")["choices"][0]["message"]["tool_calls"] == two


from unit.test_properties import _chat_out, _drive, _texts, mimo_streams  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(mimo_streams(), st.sampled_from([CallShape(legacy=True, limit=1), CallShape(limit=1), CallShape(limit=2)]),
       st.booleans(), st.sampled_from(["compact", "usage-null"]))
def test_forward_gives_what_feed_gives_when_calls_are_reshaped(script, calls, include_usage, style):
    """`forward` (the relay's parse-free path) declines what `feed` reshapes: the client's bytes
    are those of `feed` alone, read by the relay's own pump."""
    reads = [b"data: " + text.encode() + b"\n\n" for text in _texts(copy.deepcopy(script.chunks), style)]
    reads.append(b"data: [DONE]\n\n")
    plain = ChatStream(model="my-alias", include_usage=include_usage, calls=calls)
    fast = ChatStream(model="my-alias", include_usage=include_usage, calls=calls)
    expected, _ = _drive(reads, plain, fast=False)
    got, _ = _drive(reads, fast, fast=True)
    assert _chat_out(got) == _chat_out(expected)
    assert (fast.usage, fast.finish_reason, fast.emitted_content) == (plain.usage, plain.finish_reason,
                                                                      plain.emitted_content)
    if calls.legacy:
        assert all("tool_calls" not in c["choices"][0]["delta"] for c in _chat_out(got)
                   if isinstance(c, dict) and c.get("choices") and "delta" in c["choices"][0])


# -- wrong types and choices that need what is not offered (issue 19 item 13) ------------------


@pytest.mark.parametrize(("fields", "param"), [
    ({"stream": "yes"}, "stream"),
    ({"store": "no"}, "store"),
    ({"parallel_tool_calls": "no", "tools": [FN]}, "parallel_tool_calls"),
    ({"stream": True, "stream_options": "x"}, "stream_options"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": "required", "tools": []}, "tool_choice"),
    ({"tool_choice": {"type": "function", "function": {"name": "get_time"}}, "tools": [FN]}, "tool_choice"),
    ({"tool_choice": {"type": "web_search"}, "tools": [FN]}, "tool_choice"),
    ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [
        {"type": "function", "function": {"name": "get_time"}}]}}, "tools": [FN]}, "tool_choice"),
])
def test_wrong_types_and_unoffered_tools_are_400s_naming_the_field(fields, param):
    assert rejected({"messages": USER, **fields}).param == param


def test_choices_naming_a_tool_the_gateway_dropped_leave_the_choice_to_the_model():
    t = chat_request_from_chat({"messages": USER, "tools": [FN, {"type": "file_search"}],
                                "tool_choice": {"type": "file_search"}}, upstream_model=PRO)
    assert t.body["tools"] == [FN] and t.body["messages"] == USER
    t = chat_request_from_chat({"messages": USER, "tools": [{"type": "file_search"}], "tool_choice": "required"},
                               upstream_model=PRO)
    assert "tools" not in t.body
