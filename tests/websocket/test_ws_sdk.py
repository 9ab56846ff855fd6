"""The openai SDK's WebSocket client (`responses.connect()`) end to end: a warm-up, then chained
turns on one socket, a tool round trip among them, and an error event it can read."""

from __future__ import annotations

import json

import anyio
import openai
import pytest
from websocket.wsclient import TERMINALS

from mimo_asgi.testing import Answer, ToolCall

pytestmark = pytest.mark.anyio

TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def _answer(conn) -> list:
    events = []
    with anyio.fail_after(30):
        async for event in conn:
            events.append(event)
            if event.type in TERMINALS or event.type == "error":
                return events
    raise AssertionError("the socket closed before a terminal")


async def test_sdk_two_chained_turns_and_a_tool_round_trip(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Hi! Which city?", reasoning=""),
               Answer(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w1")], reasoning=""),
               Answer(text="Sunny in Paris.", reasoning=""))
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0)
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-5.5", input="", generate=False, store=False,
                                   instructions="You help with the weather.")
        warm = await _answer(conn)
        assert [e.type for e in warm] == ["response.created", "response.completed"]
        assert fake.requests == []

        await conn.response.create(model="gpt-5.5", input="Hello", previous_response_id=warm[-1].response.id,
                                   store=False, tools=[TOOL], instructions="You help with the weather.")
        first = await _answer(conn)
        assert first[-1].type == "response.completed"
        assert first[-1].response.output_text == "Hi! Which city?"
        assert any(e.type == "response.output_text.delta" for e in first)

        await conn.response.create(model="gpt-5.5", input="Paris, please", previous_response_id=first[-1].response.id,
                                   store=False, tools=[TOOL], instructions="You help with the weather.")
        second = await _answer(conn)
        [call] = second[-1].response.output
        assert (call.type, call.name, json.loads(call.arguments)) == ("function_call", "get_weather", {"city": "Paris"})

        await conn.response.create(model="gpt-5.5", previous_response_id=second[-1].response.id, store=False,
                                   tools=[TOOL], instructions="You help with the weather.",
                                   input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
        third = await _answer(conn)
        assert third[-1].response.output_text == "Sunny in Paris."

        # an id this connection does not hold: an error event the SDK yields, and the socket goes on
        await conn.response.create(model="gpt-5.5", input="x", previous_response_id="resp_unknown", store=False)
        [error] = await _answer(conn)
        assert error.type == "error" and error.error.code == "previous_response_not_found"
        assert error.status == 404

    messages = fake.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "tool"]
    assert messages[0]["content"] == "You help with the weather."
    assert messages[-2]["tool_calls"][0]["id"] == "call_w1" and messages[-1]["content"] == "sunny"
    assert len(fake.requests) == 3
