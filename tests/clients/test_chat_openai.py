"""The Chat Completions path driven by the openai SDK against uvicorn-served gateway and fake MiMo."""

import json

import openai
import pytest

from mimo_asgi.testing import Answer, ToolCall, Usage

from support import TEST_KEY


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0, timeout=20)


def extra(obj, name):
    return (obj.model_extra or {}).get(name)


def test_stream_text_reasoning_usage_and_model_echo(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(reasoning="Let me think about it.", text="Hi there, friend!",
                      usage=Usage(prompt_tokens=30, completion_tokens=12, cached_tokens=7, reasoning_tokens=5)))
    chunks = list(client(url).chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "hello"}], stream=True,
        stream_options={"include_usage": True}))
    assert {c.model for c in chunks} == {"gpt-5.5"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(extra(c.choices[0].delta, "reasoning_content") or "" for c in chunks if c.choices)
    assert text == "Hi there, friend!" and reasoning == "Let me think about it."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (30, 12)
    assert usage.prompt_tokens_details.cached_tokens == 7 and usage.completion_tokens_details.reasoning_tokens == 5
    sent = fake.requests[-1]
    assert sent.body["model"] == "mimo-v2.5-pro" and sent.status == 200
    assert sent.body["stream_options"] == {"include_usage": True}
    assert "client-own-key" not in json.dumps(sent.headers)


def test_usage_chunk_not_sent_when_client_did_not_ask(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="ok"))
    chunks = list(client(url).chat.completions.create(
        model="gpt-5.5", messages=[{"role": "user", "content": "hello"}], stream=True))
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}  # we still bill it


def test_stream_tool_call_deltas_reassemble(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(tool_calls=[ToolCall("get_weather", {"city": "Paris", "unit": "c"}),
                                  ToolCall("get_time", {"tz": "Europe/Paris"})], chunk_size=3))
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
             for n in ("get_weather", "get_time")]
    calls = {}
    for chunk in client(url).chat.completions.create(
            model="gpt-5.5", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"name": "", "args": "", "id": None})
            entry["id"] = entry["id"] or tc.id
            entry["name"] += (tc.function.name or "") if tc.function else ""
            entry["args"] += (tc.function.arguments or "") if tc.function else ""
    assert [json.loads(c["args"]) for c in calls.values()] == [{"city": "Paris", "unit": "c"}, {"tz": "Europe/Paris"}]
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"]
    assert all(c["id"].startswith("call_") for c in calls.values())


def test_non_stream_and_tool_round_trip(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(reasoning="Need the weather.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
               Answer(text="It is cold in Oslo."))
    tools = [{"type": "function", "function": {"name": "get_weather", "strict": None,
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}]
    first = client(url).chat.completions.create(model="gpt-5.5", messages=messages, tools=tools, max_tokens=200,
                                                reasoning_effort="minimal")
    assert first.model == "gpt-5.5" and first.choices[0].finish_reason == "tool_calls"
    message = first.choices[0].message
    assert extra(message, "reasoning_content") == "Need the weather."
    call = message.tool_calls[0]
    sent = fake.requests[-1].body
    assert sent["max_completion_tokens"] == 200 and "max_tokens" not in sent
    assert sent["reasoning_effort"] == "low" and sent["messages"][0]["role"] == "system"
    assert "strict" not in sent["tools"][0]["function"]
    messages += [message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "-5C"}]
    second = client(url).chat.completions.create(model="gpt-5.5", messages=messages, tools=tools)
    assert second.choices[0].message.content == "It is cold in Oslo."
    turn2 = fake.requests[-1]
    assert turn2.status == 200  # the fake accepted the replayed history: reasoning passed back, tool answered
    assistant = [m for m in turn2.body["messages"] if m["role"] == "assistant"][0]
    assert assistant["reasoning_content"] == "Need the weather." and assistant["tool_calls"][0]["id"] == call.id


def test_chat_stream_helper(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="Streaming through the helper."))
    with client(url).chat.completions.stream(model="gpt-5.5", messages=[{"role": "user", "content": "x"}]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Streaming through the helper." and final.model == "gpt-5.5"


@pytest.mark.anyio
async def test_async_client_stream(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="async hello"))
    aclient = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    stream = await aclient.chat.completions.create(model="mimo-v2.5-pro", messages=[{"role": "user", "content": "x"}],
                                                   stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async hello"
    assert fake.requests[-1].body["model"] == "mimo-v2.5-pro"
    await aclient.close()


def test_non_mimo_model_reaches_host(gateway, fake):
    url, _ = gateway
    before = len(fake.requests)
    out = client(url).chat.completions.with_raw_response.create(model="claude-3", messages=[{"role": "user", "content": "x"}])
    assert json.loads(out.text) == {"answered_by": "host", "model": "claude-3"}
    assert len(fake.requests) == before


def test_model_route_from_env_key_without_accounts(serve_gateway, fake, fake_url):
    url, _ = serve_gateway(api_key=TEST_KEY, base_url=fake_url, seal_key="k")
    fake.queue(Answer(text="env route"))
    out = client(url).chat.completions.create(model="MiMo-V2.5-Pro", messages=[{"role": "user", "content": "x"}])
    assert out.choices[0].message.content == "env route" and out.model == "MiMo-V2.5-Pro"
    assert fake.requests[-1].body["model"] == "mimo-v2.5-pro"
    # without a MiMo model name the env key does not capture the request
    host = client(url).chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert json.loads(host.text)["answered_by"] == "host"
