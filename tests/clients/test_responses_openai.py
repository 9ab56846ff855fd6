"""The Responses path driven by the openai SDK against uvicorn-served gateway and fake MiMo."""

import json

import httpx
import openai
import pytest
from support import TEST_KEY
from unit.invariants import check_responses_stream

from mimo_asgi._sse import SSEDecoder
from mimo_asgi.testing import Answer, ToolCall, Usage

FUNCTION_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": True,
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                                "additionalProperties": False}}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files. FREEFORM, not JSON.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/s"}}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello \"world\"\n*** End Patch\n"


def raw_events(url, body):
    """The Responses events exactly as sent (the SDK re-types numbers), checked by the SSE decoder."""
    response = httpx.post(url + "/v1/responses", json={**body, "stream": True}, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(e.data) for e in SSEDecoder().feed(response.content)]
    assert all(e.event == json.loads(e.data)["type"] for e in SSEDecoder().feed(response.content))
    return events


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0, timeout=20)


def test_stream_events_pass_the_invariants_and_final_equals_non_stream(gateway, fake):
    url, _ = gateway
    answer = Answer(reasoning="Think it through.", text="Hello there!",
                    usage=Usage(prompt_tokens=40, completion_tokens=9, cached_tokens=16, reasoning_tokens=4))
    fake.queue(answer, answer, answer)
    events = raw_events(url, {"model": "gpt-5.5", "input": "hi", "instructions": "Be nice."})
    final = check_responses_stream(events)
    assert final["model"] == "gpt-5.5" and final["status"] == "completed"
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    assert final["output"][1]["content"][0]["text"] == "Hello there!"
    assert final["output"][0]["summary"][0]["text"] == "Think it through."
    usage = final["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (40, 9, 49)
    assert usage["input_tokens_details"]["cached_tokens"] == 16 and usage["output_tokens_details"]["reasoning_tokens"] == 4
    sent = fake.requests[0].body
    assert sent["model"] == "mimo-v2.5-pro" and sent["messages"][0] == {"role": "system", "content": "Be nice."}

    plain = client(url).responses.create(model="gpt-5.5", input="hi", instructions="Be nice.")
    assert plain.output_text == "Hello there!" and plain.model == "gpt-5.5"
    raw = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "hi", "instructions": "Be nice."}).json()
    fake.queue(answer)
    mask = {"id", "created_at", "completed_at"}

    def strip(r):
        return {k: v for k, v in r.items() if k not in mask} | {"output": [
            {k: v for k, v in i.items() if k != "id"} for i in r["output"]]}

    assert strip(raw) == strip(final)


def test_stream_helper_final_response(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="via the helper"))
    with client(url).responses.stream(model="gpt-5.5", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_text == "via the helper" and kinds[0] == "response.created" and kinds[-1] == "response.completed"


def test_function_tool_round_trip_restores_reasoning(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(reasoning="I need the weather first.", tool_calls=[ToolCall("get_weather", {"city": "Oslo"})]),
               Answer(reasoning="Now answer.", text="Cold in Oslo."))
    first = client(url).responses.create(model="gpt-5.5", input="Weather in Oslo?", tools=[FUNCTION_TOOL],
                                         include=["reasoning.encrypted_content"], store=False)
    reasoning, call = first.output[0], first.output[1]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content.startswith("mimo1:")
    assert "I need the weather" not in reasoning.encrypted_content  # sealed, not plain
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}
    history = [{"role": "user", "content": "Weather in Oslo?"}, *[i.model_dump(exclude_none=True) for i in first.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "-5C, snow"}]
    second = client(url).responses.create(model="gpt-5.5", input=history, tools=[FUNCTION_TOOL],
                                          include=["reasoning.encrypted_content"], store=False)
    assert second.output_text == "Cold in Oslo."
    turn2 = fake.requests[-1]
    assert turn2.status == 200 and turn2.body["model"] == "mimo-v2.5-pro"
    assistant = next(m for m in turn2.body["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == "I need the weather first."
    assert assistant["tool_calls"][0]["id"] == call.call_id
    tool = turn2.body["messages"][turn2.body["messages"].index(assistant) + 1]
    assert tool == {"role": "tool", "tool_call_id": call.call_id, "content": "-5C, snow"}


def test_custom_tool_round_trip_raw_input(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(reasoning="Write the file.", tool_calls=[ToolCall("apply_patch", {"input": PATCH})], chunk_size=5),
               Answer(text="Done."))
    events = raw_events(url, {"model": "gpt-5.5", "input": "create hello.txt", "tools": [PATCH_TOOL],
                              "include": ["reasoning.encrypted_content"]})
    final = check_responses_stream(events)
    call = final["output"][-1]
    assert call["type"] == "custom_tool_call" and call["name"] == "apply_patch" and call["input"] == PATCH
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta")
    assert deltas == PATCH
    sent_tool = fake.requests[0].body["tools"][0]
    assert sent_tool["type"] == "function" and sent_tool["function"]["name"] == "apply_patch"
    history = [{"role": "user", "content": "create hello.txt"}, *final["output"],
               {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": "Success. Updated: hello.txt"}]
    second = client(url).responses.create(model="gpt-5.5", input=history, tools=[PATCH_TOOL])
    assert second.output_text == "Done."
    turn2 = fake.requests[-1]
    assert turn2.status == 200
    assistant = next(m for m in turn2.body["messages"] if m["role"] == "assistant")
    assert assistant["reasoning_content"] == "Write the file."
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"input": PATCH}
    assert turn2.body["messages"][-1]["content"] == "Success. Updated: hello.txt"


@pytest.mark.anyio
async def test_async_stream_and_incomplete_on_length(gateway, fake):
    url, _ = gateway
    fake.queue(Answer(text="cut short", finish_reason="length"))
    aclient = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
    events = [e async for e in await aclient.responses.create(model="gpt-5.5", input="hi", stream=True,
                                                              max_output_tokens=16)]
    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.incomplete_details.reason == "max_output_tokens" and final.max_output_tokens == 16
    assert final.output[-1].content[0].text == "cut short"
    assert fake.requests[-1].body["max_completion_tokens"] == 16
    await aclient.close()


@pytest.mark.parametrize("answer,code", [(Answer(text="abcdefghij", chunk_size=2, cut_after=4), "stream_truncated"),
                                         (Answer(error={"error": {"code": "500", "message": "boom"}}, error_after=3), None)])
def test_stream_faults_end_in_one_failed_event(gateway, fake, answer, code):
    url, _ = gateway
    fake.queue(answer)
    events = raw_events(url, {"model": "gpt-5.5", "input": "hi"})
    final = check_responses_stream(events)
    assert events[-1]["type"] == "response.failed" and final["status"] == "failed"
    if code:
        assert final["error"]["code"] == code
    assert TEST_KEY not in json.dumps(events)


def test_codex_fixture_request_is_accepted_by_the_fake(gateway, fake):
    import pathlib

    for name in ("codex-0.169-request-gpt-5.5.json", "codex-0.169-request-mimo-v2.5-pro.json"):
        body = json.loads((pathlib.Path(__file__).parents[3] / "shared" / "fixtures" / name).read_text())["body"]
        fake.queue(Answer(text="hi"))
        final = check_responses_stream(raw_events(gateway[0], body))
        assert final["output"][-1]["content"][0]["text"] == "hi" and final["model"] == body["model"]
        sent = fake.requests[-1]
        assert sent.status == 200
        assert [m["role"] for m in sent.body["messages"]][:2] == ["system", "system"]  # developer messages kept
