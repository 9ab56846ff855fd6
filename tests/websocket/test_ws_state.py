"""What a connection keeps: frames sending only new items with `previous_response_id` are
rebuilt into the whole conversation (Codex's real frame sequence replayed), an id that is not
the connection's last falls back to the store, and the kept state is bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support import TEST_KEY
from websocket.wsclient import BETA, completed, error_of, output_text

from mimo_asgi import Account, Limits
from mimo_asgi.testing import Answer, ToolCall

MODELS = {"gpt-5*": "mimo-v2.5-pro"}
CODEX_FRAMES = Path(__file__).parents[1] / "fixtures" / "codex-0.171" / "ws-frames-client.jsonl"
TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command.",
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]


def _roles_and_text(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in messages]


def test_increments_reach_mimo_as_the_whole_conversation(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url, headers=BETA)
    fake.queue(Answer(text="one", reasoning=""), Answer(text="two", reasoning=""), Answer(text="three", reasoning=""))
    first = completed(ws.create(model="gpt-5.5", store=False, instructions="Be brief.", input="1"))
    second = completed(ws.create(model="gpt-5.5", store=False, instructions="Be brief.", input="2",
                                 previous_response_id=first["id"]))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("system", "Be brief."), ("user", "1"), ("assistant", "one"), ("user", "2")]
    completed(ws.create(model="gpt-5.5", store=False, instructions="Be brief.", previous_response_id=second["id"],
                        input=[{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "3"}]}]))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("system", "Be brief."), ("user", "1"), ("assistant", "one"), ("user", "2"), ("assistant", "two"),
        ("user", "3")]


def test_an_empty_increment_continues_the_conversation(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(text="one", reasoning=""), Answer(text="more", reasoning=""))
    first = completed(ws.create(model="gpt-5.5", store=False, input="1"))
    completed(ws.create(model="gpt-5.5", store=False, input=[], previous_response_id=first["id"]))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [("user", "1"), ("assistant", "one")]


def test_a_tool_round_trip_sent_as_increments(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(tool_calls=[ToolCall("exec_command", {"cmd": "echo tok"}, id="call_tok_1")], reasoning=""),
               Answer(text="It printed tok.", reasoning=""))
    first = completed(ws.create(model="gpt-5.5", store=False, tools=TOOLS, input="run echo tok"))
    [call] = first["output"]
    assert (call["type"], call["name"], call["call_id"]) == ("function_call", "exec_command", "call_tok_1")
    second = completed(ws.create(model="gpt-5.5", store=False, tools=TOOLS, previous_response_id=first["id"],
                                 input=[{"type": "function_call_output", "call_id": "call_tok_1", "output": "tok\n"}]))
    assert output_text(second) == "It printed tok."
    user, assistant, tool = fake.requests[-1].body["messages"]
    assert user == {"role": "user", "content": "run echo tok"}
    assert assistant["role"] == "assistant"
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in assistant["tool_calls"]] == [("call_tok_1", "exec_command", {"cmd": "echo tok"})]
    assert tool == {"role": "tool", "tool_call_id": "call_tok_1", "content": "tok\n"}


def _codex_frames() -> list[dict[str, Any]]:
    return [json.loads(line)["frame"] for line in CODEX_FRAMES.read_text().splitlines()]


def _text(item: dict[str, Any]) -> str:
    return "".join(part["text"] for part in item["content"])


def test_codex_0171_frame_sequence_replayed(gateway, fake, open_ws):
    """Codex's four frames on one socket: prewarm, the turn chained to it, the tool output and
    a compaction trigger chained to the turn, then the whole input again with the compaction
    item exactly as it was returned."""
    url, _ = gateway
    prewarm, turn, compact, after = _codex_frames()
    ws = open_ws(url, headers=BETA)

    warm = ws.create(**{k: v for k, v in prewarm.items() if k != "type"})
    assert [e["type"] for e in warm] == ["response.created", "response.completed"]
    assert fake.requests == []

    [output] = [i for i in compact["input"] if i["type"] == "function_call_output"]
    fake.queue(Answer(tool_calls=[ToolCall("exec_command", {"cmd": "echo tok"}, id=output["call_id"])]))
    called = completed(ws.create(**{**turn, "previous_response_id": warm[-1]["response"]["id"]}))
    assert [i["type"] for i in called["output"]][-1] == "function_call"
    messages = fake.requests[-1].body["messages"]
    base_prompt = _text(prewarm["input"][0])
    assert messages[0] == {"role": "system", "content": base_prompt}  # the prewarm's input, kept
    assert messages[-1]["content"] == _text(turn["input"][-1])  # the turn's own prompt
    assert len(messages) == 1 + len(turn["input"])

    fake.queue(Answer(text="SUMMARY: ran echo tok, it printed tok.", reasoning=""))
    summarised = completed(ws.create(**{**compact, "previous_response_id": called["id"]}))
    [compaction] = summarised["output"]
    assert compaction["type"] == "compaction" and compaction["encrypted_content"]
    transcript = json.dumps(fake.requests[-1].body["messages"])
    # the whole conversation went into the summary request: the prewarm's, the turn's, MiMo's call, the output
    for needle in (base_prompt[:60], _text(turn["input"][-1]), "exec_command", output["output"][:40]):
        assert json.dumps(needle)[1:-1] in transcript, needle

    fake.queue(Answer(text="Hello", reasoning=""))
    resent = [i if i["type"] != "compaction" else compaction for i in after["input"]]
    assert "previous_response_id" not in after
    final = completed(ws.create(**{**after, "input": resent}))
    assert output_text(final) == "Hello"
    sent = json.dumps(fake.requests[-1].body["messages"])
    assert "SUMMARY: ran echo tok, it printed tok." in sent  # the compaction item expanded
    assert "Chunk ID" not in sent  # the tool output was compacted away, not carried on from the connection
    assert len(fake.requests) == 3


class _SlowRelease:
    """A lease whose release takes a while to complete (a shared pool telling its store)."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def release(self):
        return anyio.sleep(0.3)


def test_the_next_frame_sent_at_once_after_a_terminal_is_served(serve_gateway, fake, fake_url, open_ws):
    """A client may send its next frame the moment it reads a terminal (Codex does), while the
    server is still giving back the lease of the response that just ended."""
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(resolver=lambda request: _SlowRelease(account), api_key=None, seal_key="k")
    ws = open_ws(url, headers=BETA)
    previous = ws.create(model="gpt-5.5", store=False, generate=False, input="warm")[-1]["response"]["id"]
    for turn in range(3):
        fake.queue(Answer(text=f"answer {turn}", reasoning=""))
        response = completed(ws.create(model="gpt-5.5", store=False, previous_response_id=previous,
                                       input=f"turn {turn}"))
        assert output_text(response) == f"answer {turn}"
        previous = response["id"]
    assert _roles_and_text(fake.requests[-1].body["messages"])[-3:] == [
        ("user", "turn 1"), ("assistant", "answer 1"), ("user", "turn 2")]
    fake.queue(Answer.error_status(400, "bad turn"), Answer(text="after the error", reasoning=""))
    error_of(ws.create(model="gpt-5.5", store=False, previous_response_id=previous, input="bad"), 400)
    retried = completed(ws.create(model="gpt-5.5", store=False, previous_response_id=previous, input="good"))
    assert output_text(retried) == "after the error"


def test_an_id_that_is_not_the_connections_last_without_a_store(serve_gateway, fake, fake_url, open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", store=None)
    ws = open_ws(url)
    first = completed(ws.create(model="gpt-5.5", input="1"))
    completed(ws.create(model="gpt-5.5", input="2", previous_response_id=first["id"]))
    # the connection keeps only its last response
    frame = error_of(ws.create(model="gpt-5.5", input="3", previous_response_id=first["id"]), 400,
                     "previous_response_not_found")
    assert frame["error"]["param"] == "previous_response_id"
    error_of(open_ws(url).create(model="gpt-5.5", input="x", previous_response_id="resp_unknown"), 400,
             "previous_response_not_found")
    assert len(fake.requests) == 2
    completed(ws.create(model="gpt-5.5", input="the whole input again"))  # still usable


def test_an_id_from_the_store_continues_that_conversation(gateway, fake, open_ws):
    url, _ = gateway
    fake.queue(Answer(text="stored answer", reasoning=""), Answer(text="continued", reasoning=""))
    stored = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "over http", "store": True},
                        timeout=10).json()
    assert stored["status"] == "completed"
    ws = open_ws(url)
    response = completed(ws.create(model="gpt-5.5", store=False, previous_response_id=stored["id"],
                                   input="over the socket"))
    assert output_text(response) == "continued"
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("user", "over http"), ("assistant", "stored answer"), ("user", "over the socket")]
    # an id neither the connection's nor stored
    error_of(ws.create(model="gpt-5.5", input="x", previous_response_id="resp_unknown"), 404,
             "previous_response_not_found")


def _gateway_with_cap(serve_gateway, fake_url, cap: int, **options):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    return serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(max_body_size=cap),
                         **options)


@pytest.mark.parametrize("store,status", [(None, 400), ("memory", 404)])
def test_a_conversation_over_the_kept_state_cap_is_not_kept(serve_gateway, fake, fake_url, open_ws, store, status):
    url, _ = _gateway_with_cap(serve_gateway, fake_url, 4000, store=store)
    ws = open_ws(url)
    fake.queue(Answer(text="a long answer " * 300, reasoning=""))  # ~4.2 kB of output
    big = completed(ws.create(model="gpt-5.5", store=False, input="tell me a lot"))
    error_of(ws.create(model="gpt-5.5", store=False, input="and?", previous_response_id=big["id"]), status,
             "previous_response_not_found")
    # the client sends a whole input again (one within the cap), and the connection keeps that one
    fake.queue(Answer(text="short", reasoning=""), Answer(text="chained", reasoning=""))
    short = completed(ws.create(model="gpt-5.5", store=False, input="tell me a little"))
    completed(ws.create(model="gpt-5.5", store=False, input="and?", previous_response_id=short["id"]))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("user", "tell me a little"), ("assistant", "short"), ("user", "and?")]


def test_the_kept_state_cap_counts_the_conversation_not_each_frames_fields(serve_gateway, fake, fake_url, open_ws):
    """Each frame repeats its tools and instructions (Codex: ~25 kB a frame); the connection keeps
    only input and output items, so only those count against the cap."""
    url, _ = _gateway_with_cap(serve_gateway, fake_url, 8000)
    ws = open_ws(url)
    fields = {"model": "gpt-5.5", "store": False, "instructions": "Follow the house rules. " * 60}  # ~1.4 kB
    previous = None
    for turn in range(8):
        fake.queue(Answer(text=f"answer {turn}", reasoning=""))
        response = completed(ws.create(**fields, input=f"turn {turn}",
                                       **({"previous_response_id": previous} if previous else {})))
        previous = response["id"]
    history = [(m["role"], m["content"]) for m in fake.requests[-1].body["messages"][1:]]
    assert history == [x for t in range(7) for x in (("user", f"turn {t}"), ("assistant", f"answer {t}"))] + [
        ("user", "turn 7")]
    # that whole conversation fits well in one frame under the cap
    whole = {"type": "response.create", **fields, "input": [{"role": r, "content": c} for r, c in history]}
    assert len(json.dumps(whole)) < 4000


def test_a_warm_up_that_takes_the_conversation_over_the_cap_keeps_nothing(serve_gateway, fake, fake_url, open_ws):
    url, _ = _gateway_with_cap(serve_gateway, fake_url, 4000)
    ws = open_ws(url)
    fake.queue(Answer(text="a middling answer " * 40, reasoning=""))  # ~0.9 kB kept
    first = completed(ws.create(model="gpt-5.5", store=False, input="start"))
    warm = ws.create(model="gpt-5.5", store=False, generate=False, previous_response_id=first["id"],
                     input="context " * 400)  # a 3.3 kB frame: under the cap alone, over it with the turn
    assert warm[-1]["type"] == "response.completed"
    error_of(ws.create(model="gpt-5.5", store=False, input="go", previous_response_id=warm[-1]["response"]["id"]),
             404, "previous_response_not_found")
    assert len(fake.requests) == 1


def test_a_warm_up_continuing_a_stored_conversation_keeps_its_history(gateway, fake, open_ws):
    """A warm-up may sit in the middle of a chain; chained to a stored response, the frame after
    it continues that stored conversation (it must not silently start a new one)."""
    url, _ = gateway
    fake.queue(Answer(text="stored answer", reasoning=""), Answer(text="continued", reasoning=""))
    stored = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "over http", "store": True},
                        timeout=10).json()
    ws = open_ws(url)
    warm = ws.create(model="gpt-5.5", store=False, generate=False, previous_response_id=stored["id"],
                     input="warming up")
    assert warm[-1]["type"] == "response.completed"
    completed(ws.create(model="gpt-5.5", store=False, previous_response_id=warm[-1]["response"]["id"],
                        input="go on"))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("user", "over http"), ("assistant", "stored answer"), ("user", "warming up"), ("user", "go on")]
    # a warm-up chained to an id the store does not hold is refused as any frame is
    error_of(ws.create(model="gpt-5.5", generate=False, previous_response_id="resp_unknown", input="x"), 404,
             "previous_response_not_found")


def test_an_incomplete_response_can_be_chained_from(gateway, fake, open_ws):
    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(text="cut by len", reasoning="", finish_reason="length"), Answer(text="rest", reasoning=""))
    cut = ws.create(model="gpt-5.5", store=False, input="write a lot")[-1]
    assert cut["type"] == "response.incomplete"
    assert cut["response"]["incomplete_details"]["reason"] == "max_output_tokens"
    completed(ws.create(model="gpt-5.5", store=False, input="go on", previous_response_id=cut["response"]["id"]))
    assert _roles_and_text(fake.requests[-1].body["messages"]) == [
        ("user", "write a lot"), ("assistant", "cut by len"), ("user", "go on")]


def test_a_chained_frame_is_translated_from_the_last_turns_continuation(gateway, fake, open_ws, monkeypatch):
    """What keeps a long connection cheap: a chained frame's items are parsed, the conversation
    before them is not parsed again."""
    from mimo_asgi.translate import _items

    url, _ = gateway
    ws = open_ws(url)
    fake.queue(Answer(text="one", reasoning=""), Answer(text="two", reasoning=""))
    history = [{"role": "user", "content": f"u{n}"} for n in range(20)]
    first = completed(ws.create(model="gpt-5.5", store=False, input=history))
    parsed: list[Any] = []
    real = _items._parse

    def counting(item: Any, param: str, ctx: Any) -> Any:
        parsed.append(item)
        return real(item, param, ctx)

    monkeypatch.setattr(_items, "_parse", counting)
    completed(ws.create(model="gpt-5.5", store=False, input=[{"role": "user", "content": "next"}],
                        previous_response_id=first["id"]))
    # only what is new since the last translation: the answer "one", then the frame's own item
    assert [(i.get("role"), i["content"][0]["text"]) for i in parsed] == [("assistant", "one"), ("user", "next")]
    assert len(fake.requests[-1].body["messages"]) == 22
