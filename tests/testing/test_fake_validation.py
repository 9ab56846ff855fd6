"""Requests MiMo rejects are rejected by the fake with MiMo's status and body shape."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from mimo_asgi.testing import PASS_BACK, FakeMimo

KEY = "sk-test-validation-0001"
USER = {"role": "user", "content": "hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def post(fake: FakeMimo, body: Any, headers: dict[str, str] | None = None, path: str = "/v1/chat/completions") -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=fake)
        async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            sent = {"authorization": f"Bearer {KEY}"} if headers is None else headers
            return await client.post(path, content=content, headers={"content-type": "application/json", **sent})

    return anyio.run(go)


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "mimo-v2.5-pro", "messages": [USER], **fields}


def incorrect(detail: str, status: int = 400) -> dict[str, Any]:
    return {"error": {"code": str(status), "message": "Param Incorrect", "param": detail, "type": ""}}


def assert_incorrect(response: httpx.Response, contains: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"], error["type"]) == (str(status), "Param Incorrect", "")
    assert contains in error["param"]


def call(call_id: str = "call_1", arguments: str = '{"city":"Paris"}') -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


def turn(*calls: dict[str, Any], reasoning: str | None = "I should check.", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": list(calls), **extra}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def answer(call_id: str = "call_1", content: Any = "sunny") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


# --- model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-5", "MiMo-V2.5-Pro", "mimo-v2-5-pro", "mimo-v2-flash"])
def test_unknown_or_miscased_model_is_not_supported(model: str) -> None:
    response = post(FakeMimo(), chat(model=model))
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "400", "message": f"Not supported model {model}", "param": "Param Incorrect", "type": ""}
    }


def test_models_given_to_the_fake_are_served() -> None:
    assert post(FakeMimo(models=["mimo-v2-flash"]), chat(model="mimo-v2-flash")).status_code == 200


def test_token_plan_host_does_not_serve_ultraspeed() -> None:
    body = chat(model="mimo-v2.5-pro-ultraspeed")
    assert post(FakeMimo(), body).status_code == 200
    token_plan = FakeMimo(token_plan=True)
    assert post(token_plan, body, {"api-key": token_plan.api_key}).status_code == 400


# --- top-level parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value",
    [("enable_thinking", True), ("user", "u1"), ("n", 1), ("seed", 7), ("store", False), ("metadata", {}), ("logprobs", True)],
)
def test_undocumented_parameters_are_refused(name: str, value: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(**{name: value})), name)


def test_every_documented_parameter_is_accepted() -> None:
    body = chat(
        max_completion_tokens=100, max_tokens=100, temperature=1.0, top_p=0.95, stream=False, stop=["x"],
        frequency_penalty=0, presence_penalty=0, response_format={"type": "json_object"},
        thinking={"type": "enabled"}, tools=[TOOL], tool_choice="auto", stream_options={"include_usage": True},
        parallel_tool_calls=True, reasoning_effort="high",
    )  # fmt: skip
    assert post(FakeMimo(), body).status_code == 200


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_literals_are_accepted(effort: str) -> None:
    assert post(FakeMimo(), chat(reasoning_effort=effort)).status_code == 200


@pytest.mark.parametrize("effort", ["none", "xhigh", "max", 3, None])
def test_other_reasoning_efforts_are_a_literal_error(effort: Any) -> None:
    response = post(FakeMimo(), chat(reasoning_effort=effort))
    assert_incorrect(response, "literal_error")
    assert "Input should be 'low', 'medium' or 'high'" in response.json()["error"]["param"]


def test_minimal_reasoning_effort_is_a_500() -> None:
    response = post(FakeMimo(), chat(reasoning_effort="minimal"))
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "500" and "literal_error" in error["message"] and "'minimal'" in error["message"]


@pytest.mark.parametrize(
    "thinking", [{"type": "auto"}, "enabled", True, {"type": "enabled", "budget_tokens": 100}, {}]
)
def test_thinking_must_be_enabled_or_disabled(thinking: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(thinking=thinking)), "thinking")


@pytest.mark.parametrize("name", ["max_completion_tokens", "max_tokens"])
@pytest.mark.parametrize("value", [0, -1, 131073, "100", True, 1.5])
def test_max_tokens_out_of_range_are_refused(name: str, value: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(**{name: value})), name)


@pytest.mark.parametrize("value", [1, 131072])
def test_max_tokens_bounds_are_accepted(value: int) -> None:
    assert post(FakeMimo(), chat(max_completion_tokens=value)).status_code == 200


@pytest.mark.parametrize(
    "fields", [{"temperature": 2.5}, {"top_p": 1.5}, {"presence_penalty": -3}, {"stop": ["a", "b", "c", "d", "e"]}]
)
def test_sampling_values_out_of_range_are_refused(fields: dict[str, Any]) -> None:
    assert post(FakeMimo(), chat(**fields)).status_code == 400


def test_json_schema_response_format_is_refused() -> None:
    body = chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
    assert_incorrect(post(FakeMimo(), body), "response_format")


def test_non_boolean_stream_is_refused() -> None:
    assert_incorrect(post(FakeMimo(), chat(stream="yes")), "stream")


def test_invalid_json_body_is_refused() -> None:
    assert_incorrect(post(FakeMimo(), b"{not json"), "Invalid JSON body")


def test_non_object_body_is_refused() -> None:
    assert_incorrect(post(FakeMimo(), [1, 2]), "JSON object")


# --- tools -----------------------------------------------------------------------------------


def test_strict_null_is_refused_and_booleans_accepted() -> None:
    def tools(strict: Any) -> dict[str, Any]:
        return chat(tools=[{"type": "function", "function": {"name": "f", "strict": strict}}])

    assert_incorrect(post(FakeMimo(), tools(None)), "Input should be a valid boolean")
    assert post(FakeMimo(), tools(True)).status_code == 200


def test_duplicate_tool_names_are_refused() -> None:
    response = post(FakeMimo(), chat(tools=[TOOL, TOOL]))
    assert response.json() == incorrect("tools contains duplicate names: get_weather")


@pytest.mark.parametrize("kind", ["custom", "local_shell", "file_search", None])
def test_tool_types_other_than_function_and_web_search_are_refused(kind: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(tools=[{"type": kind, "custom": {"name": "apply_patch"}}])), "type")


@pytest.mark.parametrize("name", ["has space", "ns.tool", "", "x" * 65, None])
def test_tool_names_must_match_the_pattern(name: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(tools=[{"type": "function", "function": {"name": name}}])), "pattern")


def test_web_search_tool_needs_the_plugin() -> None:
    body = chat(tools=[{"type": "web_search", "max_keyword": 3, "force_search": True, "limit": 5}, TOOL])
    assert post(FakeMimo(), body).status_code == 200
    for fake in (FakeMimo(web_search_plugin=False), FakeMimo(token_plan=True)):
        response = post(fake, body, {"authorization": f"Bearer {fake.api_key}"})
        assert_incorrect(response, "webSearchEnabled is false")


def test_token_plan_with_plugin_switched_on_accepts_web_search() -> None:
    fake = FakeMimo(token_plan=True, web_search_plugin=True)
    response = post(fake, chat(tools=[{"type": "web_search"}]), {"api-key": fake.api_key})
    assert response.status_code == 200


# --- messages --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["function", "model", "System", None])
def test_unknown_roles_are_refused(role: Any) -> None:
    assert_incorrect(post(FakeMimo(), chat(messages=[{"role": role, "content": "x"}])), "role")


def test_developer_and_several_system_messages_are_accepted() -> None:
    messages = [{"role": "system", "content": "a"}, {"role": "developer", "content": "b"}, {"role": "system", "content": "c"}, USER]
    assert post(FakeMimo(), chat(messages=messages)).status_code == 200


def test_empty_messages_are_refused() -> None:
    assert_incorrect(post(FakeMimo(), chat(messages=[])), "messages")


def test_assistant_null_content_is_not_present() -> None:
    messages = [USER, {"role": "assistant", "content": None}, USER]
    assert post(FakeMimo(), chat(messages=messages)).json() == incorrect("`text` is not present")


def test_assistant_null_content_next_to_tool_calls_is_not_present() -> None:
    messages = [USER, turn(call(), content=None), answer()]
    assert post(FakeMimo(), chat(messages=messages)).json() == incorrect("`text` is not present")


def test_assistant_content_may_be_omitted_next_to_tool_calls() -> None:
    message = turn(call())
    del message["content"]
    assert post(FakeMimo(), chat(messages=[USER, message, answer()])).status_code == 200


@pytest.mark.parametrize("part", [{"type": "text", "text": ""}, {"type": "text"}, {"type": "text", "text": None}])
def test_empty_or_missing_text_parts_are_not_set(part: dict[str, Any]) -> None:
    response = post(FakeMimo(), chat(messages=[{"role": "user", "content": [part]}]))
    assert response.json() == incorrect("`text` is not set")


def test_tool_message_with_list_content_is_not_set() -> None:
    content = [{"type": "text", "text": "ok"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]
    response = post(FakeMimo(), chat(messages=[USER, turn(call()), answer(content=content)]))
    assert response.json() == incorrect("`text` is not set")


def test_answered_tool_calls_are_accepted() -> None:
    messages = [USER, turn(call("call_1"), call("call_2")), answer("call_2"), answer("call_1"), USER]
    assert post(FakeMimo(), chat(messages=messages)).status_code == 200


@pytest.mark.parametrize(
    "messages",
    [
        [USER, answer()],  # no assistant turn at all
        [USER, turn(call("call_1")), answer("call_1"), answer("call_9")],  # unknown id
        [USER, turn(call("call_1")), answer("call_1"), answer("call_1")],  # answered twice
        [USER, turn(call("call_1")), answer("call_1"), USER, answer("call_1")],  # not right after its turn
    ],
)
def test_orphan_tool_messages_are_refused(messages: list[dict[str, Any]]) -> None:
    assert_incorrect(post(FakeMimo(), chat(messages=messages)), "must be a response to a preceding message")


@pytest.mark.parametrize(
    "messages",
    [
        [USER, turn(call("call_1"), call("call_2")), answer("call_1"), USER],
        [USER, turn(call("call_1"))],
        [USER, turn(call("call_1")), turn(call("call_2")), answer("call_2")],
    ],
)
def test_unanswered_tool_calls_are_refused(messages: list[dict[str, Any]]) -> None:
    assert_incorrect(post(FakeMimo(), chat(messages=messages)), "did not have response messages")


@pytest.mark.parametrize("arguments", ['{"city": "Par', "", "not json", None])
def test_tool_call_arguments_must_be_json(arguments: Any) -> None:
    messages = [USER, turn(call(arguments=arguments)), answer()]
    assert_incorrect(post(FakeMimo(), chat(messages=messages)), "arguments")


@pytest.mark.parametrize("reasoning", [None, ""])
def test_thinking_mode_needs_reasoning_passed_back(reasoning: str | None) -> None:
    messages = [USER, turn(call(), reasoning=reasoning), answer()]
    for body in (chat(messages=messages), chat(messages=messages, thinking={"type": "enabled"})):
        response = post(FakeMimo(), body)
        assert response.status_code == 400
        assert response.json() == incorrect(PASS_BACK)


def test_no_reasoning_needed_when_thinking_is_off() -> None:
    messages = [USER, turn(call(), reasoning=None), answer()]
    assert post(FakeMimo(), chat(messages=messages, thinking={"type": "disabled"})).status_code == 200
    flash = FakeMimo(models=["mimo-v2-flash"])  # the one model with thinking off by default
    assert post(flash, chat(model="mimo-v2-flash", messages=messages)).status_code == 200
    assert post(flash, chat(model="mimo-v2-flash", messages=messages, thinking={"type": "enabled"})).status_code == 400


def image(url: str = "data:image/png;base64,iVBORw0KGgo=") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_images_on_a_text_only_model_find_no_endpoint() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, image()]}]
    response = post(FakeMimo(), chat(messages=messages))
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "404", "message": "No endpoints found that support image input", "param": "", "type": ""}
    }


def test_images_on_a_vision_model_need_a_text_part() -> None:
    with_text = [{"role": "user", "content": [{"type": "text", "text": "what is this"}, image()]}]
    assert post(FakeMimo(), chat(model="mimo-v2.5", messages=with_text)).status_code == 200
    response = post(FakeMimo(), chat(model="mimo-v2.5", messages=[{"role": "user", "content": [image()]}]))
    assert response.json() == incorrect("`text` is not set")


def test_images_outside_user_messages_are_refused() -> None:
    messages = [{"role": "system", "content": [image()]}, USER]
    assert post(FakeMimo(), chat(model="mimo-v2.5", messages=messages)).status_code == 400


# --- error framing ---------------------------------------------------------------------------


def test_stream_requests_get_sse_framed_errors() -> None:
    response = post(FakeMimo(), chat(stream=True, tools=[TOOL, TOOL]))
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content.startswith(b'data:{"error":')  # no space after the colon
    assert json.loads(response.content.removeprefix(b"data:")) == incorrect("tools contains duplicate names: get_weather")


def test_non_stream_requests_get_json_errors() -> None:
    response = post(FakeMimo(), chat(tools=[TOOL, TOOL]))
    assert response.headers["content-type"] == "application/json"
    assert response.content.startswith(b'{"error":')
