"""What the translators tell a client, as the openai SDK (retries off) meets it through the gateway
and the fake MiMo: echoed fields, images and audio, legacy functions, wrong types, fields with no
MiMo place."""

from __future__ import annotations

import json
import logging

import openai
import pytest
from openai.types.responses import Response

from mimo_asgi.testing import Answer, ToolCall

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0, timeout=20)


def bad_request(call, *args, **kwargs) -> dict:
    """The `error` object of the 400 the SDK raised for `call(*args, **kwargs)`."""
    with pytest.raises(openai.BadRequestError) as info:
        call(*args, **kwargs)
    assert info.value.status_code == 400
    return info.value.response.json()["error"]


# -- item 8: the echoed request validates -------------------------------------------------------


def test_echoed_function_tools_carry_strict_and_the_response_validates(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    raw = client(url).responses.with_raw_response.create(
        model="gpt-5.5", input="Weather in Oslo?", tools=[WEATHER],
        tool_choice={"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]})
    body = json.loads(raw.text)
    assert body["tools"] == [{**WEATHER, "strict": True}]  # OpenAI's default for Responses function tools
    Response.model_validate(body)
    assert body["output"][-1]["type"] == "function_call"


# -- item 9: images are never dropped silently --------------------------------------------------

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def test_a_users_image_for_a_text_only_model_is_a_400_naming_it(gateway, fake):
    url, _ = gateway  # gpt-5* is served by mimo-v2.5-pro, which takes no images
    before = len(fake.requests)
    error = bad_request(client(url).chat.completions.create, model="gpt-5.5", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]}])
    assert error["param"] == "messages[0].content[1]" and "gpt-5.5" in error["message"]
    assert "mimo-v2.5-pro" in error["message"] and error["code"] == "image_input_not_supported"
    error = bad_request(client(url).responses.create, model="gpt-5.5", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"}, {"type": "input_image", "image_url": IMAGE}]}])
    assert error["param"] == "input[0].content[1]" and "mimo-v2.5-pro" in error["message"]
    assert len(fake.requests) == before  # MiMo was never asked


def test_a_users_image_reaches_a_mimo_model_newer_than_the_gateway_knows(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="A cat."), Answer(text="A cat."))
    out = client(url).chat.completions.create(model="mimo-v2.6-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]}])
    assert out.choices[0].message.content == "A cat."
    assert fake.requests[-1].body["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": IMAGE}}
    out = client(url).responses.create(model="mimo-v2.6-flash", input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": IMAGE}]}])
    assert out.output_text == "A cat."
    assert {"type": "image_url", "image_url": {"url": IMAGE}} in fake.requests[-1].body["messages"][0]["content"]


def test_an_image_in_a_tool_output_becomes_a_marker_for_a_text_only_model(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="I could not see it."))
    out = client(url).responses.create(model="gpt-5.5", input=[
        {"role": "user", "content": "Take a screenshot."},
        {"type": "function_call", "call_id": "call_1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": [
            {"type": "input_text", "text": "taken"}, {"type": "input_image", "image_url": IMAGE}]}],
        tools=[{"type": "function", "name": "screenshot", "parameters": {"type": "object", "properties": {}}}])
    assert out.output_text == "I could not see it."
    tool = [m for m in fake.requests[-1].body["messages"] if m["role"] == "tool"][0]
    assert tool["content"] == "taken\n[image omitted: mimo-v2.5-pro does not accept images]"


# -- item 10: audio follows the rule images follow ----------------------------------------------

AUDIO = {"data": "UklGRg==", "format": "wav"}


def test_a_users_audio_for_a_text_only_model_is_a_400_naming_it(gateway, fake):
    url, _ = gateway
    before = len(fake.requests)
    error = bad_request(client(url).responses.create, model="gpt-5.5", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Transcribe."}, {"type": "input_audio", "input_audio": AUDIO}]}])
    assert error["param"] == "input[0].content[1]" and error["code"] == "audio_input_not_supported"
    error = bad_request(client(url).chat.completions.create, model="gpt-5.5", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Transcribe."}, {"type": "input_audio", "input_audio": AUDIO}]}])
    assert error["param"] == "messages[0].content[1]" and "mimo-v2.5-pro" in error["message"]
    assert len(fake.requests) == before


def test_a_users_audio_reaches_an_audio_capable_model_on_the_chat_path(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Hello."))
    part = {"type": "input_audio", "input_audio": AUDIO}
    client(url).chat.completions.create(model="mimo-v2.5", messages=[{"role": "user", "content": [part]}])
    assert part in fake.requests[-1].body["messages"][0]["content"]


def test_a_users_audio_reaches_an_audio_capable_model_on_the_responses_path(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Hello."))
    client(url).responses.create(model="mimo-v2.5", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Transcribe."}, {"type": "input_audio", "input_audio": AUDIO}]}])
    assert {"type": "input_audio", "input_audio": AUDIO} in fake.requests[-1].body["messages"][0]["content"]


# -- item 12: Chat Completions, legacy and repaired ---------------------------------------------

LEGACY = {"name": "get_weather", "description": "Weather for a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_legacy_functions_reach_mimo_as_tools(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]))
    client(url).chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "Oslo?"}],
                                        functions=[LEGACY], function_call={"name": "get_weather"})
    sent = fake.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": LEGACY}] and sent["parallel_tool_calls"] is False


def test_legacy_functions_are_answered_with_function_call(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"})]))
    out = client(url).chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "Oslo?"}],
                                              functions=[LEGACY])
    choice = out.choices[0]
    assert choice.finish_reason == "function_call" and not choice.message.tool_calls
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Oslo"}


def test_a_legacy_stream_answers_delta_function_call(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})], chunk_size=4))
    chunks = list(client(url).chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "Oslo?"}], functions=[LEGACY], stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not any(d.tool_calls for d in deltas)
    calls = [d.function_call for d in deltas if d.function_call]
    assert calls[0].name == "get_weather"
    assert json.loads("".join(c.arguments or "" for c in calls)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["function_call"]


def test_a_broken_tool_history_is_repaired_not_refused(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Done."))
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    out = client(url).chat.completions.create(model="gpt-5.5", messages=[
        {"role": "user", "content": "Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},  # its result never came
        {"role": "user", "content": "Never mind."},
        {"role": "tool", "tool_call_id": "call_7", "content": "stray"},  # a result without its call
    ], tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
    assert out.choices[0].message.content == "Done." and fake.requests[-1].status == 200
    assert [m["role"] for m in fake.requests[-1].body["messages"]] == ["user", "assistant", "tool", "user", "user"]


# -- item 13: wrong types are 400s naming the param ---------------------------------------------

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize(("extra", "param"), [
    ({"stream": "yes"}, "stream"),
    ({"store": "no"}, "store"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": {"type": "function", "name": "get_weather"}}, "tool_choice"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_time"}}, "tool_choice"),
])
def test_responses_wrong_types_are_400s(gateway, fake, extra, param):
    url, _ = gateway
    before = len(fake.requests)
    error = bad_request(client(url).responses.create, model="gpt-5.5", input="hello", extra_body=extra)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert len(fake.requests) == before


@pytest.mark.parametrize(("extra", "param"), [
    ({"stream": "yes"}, "stream"),
    ({"store": "no"}, "store"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": [{"type": "function", "function": {"name": "get_weather"}}],
      "tool_choice": {"type": "function", "function": {"name": "get_time"}}}, "tool_choice"),
])
def test_chat_wrong_types_are_400s(gateway, fake, extra, param):
    url, _ = gateway
    before = len(fake.requests)
    error = bad_request(client(url).chat.completions.create, model="gpt-5.5", messages=HELLO, extra_body=extra)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert len(fake.requests) == before


# -- item 14: nothing ignored silently -----------------------------------------------------------

TWO_CALLS = [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"})]


@pytest.mark.parametrize("fields", [{"max_tool_calls": 1}, {"parallel_tool_calls": False}])
@pytest.mark.parametrize("stream", [False, True])
def test_responses_keep_the_first_call_when_fewer_are_allowed(gateway, fake, fields, stream):
    url, _ = gateway
    fake.queue(Answer(tool_calls=TWO_CALLS))
    if stream:
        with client(url).responses.stream(model="gpt-5.5", input="Weather?", tools=[WEATHER], **fields) as events:
            out = events.get_final_response()
    else:
        out = client(url).responses.create(model="gpt-5.5", input="Weather?", tools=[WEATHER], **fields)
    calls = [item for item in out.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Oslo"}]


def test_chat_keeps_the_first_call_when_parallel_calls_are_off(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=TWO_CALLS))
    out = client(url).chat.completions.create(model="gpt-5.5", messages=HELLO, parallel_tool_calls=False,
                                              tools=[{"type": "function", "function": LEGACY}])
    assert [json.loads(c.function.arguments) for c in out.choices[0].message.tool_calls] == [{"city": "Oslo"}]


def test_log_probabilities_are_refused_naming_the_field(gateway, fake):
    url, _ = gateway
    error = bad_request(client(url).chat.completions.create, model="gpt-5.5", messages=HELLO, logprobs=True)
    assert error["param"] == "logprobs" and error["code"] == "unsupported_parameter"
    error = bad_request(client(url).responses.create, model="gpt-5.5", input="hello", top_logprobs=3)
    assert error["param"] == "top_logprobs"


def test_a_dropped_field_is_logged_once_per_process(gateway, fake, caplog):
    from mimo_asgi.translate import _mimo

    url, _ = gateway
    _mimo.WARNED_ONCE.discard("truncation")
    caplog.set_level(logging.WARNING, logger="mimo_asgi")
    for _ in range(2):
        fake.queue(Answer(text="ok"))
        assert client(url).responses.create(model="gpt-5.5", input="hello", truncation="auto").output_text == "ok"
    said = [r.getMessage() for r in caplog.records if "truncation is not sent" in r.getMessage()]
    assert len(said) == 1
