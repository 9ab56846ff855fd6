"""What the translators tell a client, as the openai SDK (retries off) meets it through the gateway
and the fake MiMo: echoed fields, images and audio, legacy functions, wrong types, fields with no
MiMo place."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.responses import Response

from mimo_asgi.testing import Answer, ToolCall

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0, timeout=20)


def bad_request(call) -> dict:
    """The error body of a 400 the SDK raised."""
    with pytest.raises(openai.BadRequestError) as info:
        call()
    assert info.value.status_code == 400
    return info.value.body if isinstance(info.value.body, dict) and "param" in info.value.body \
        else info.value.response.json()["error"]


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
