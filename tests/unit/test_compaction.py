"""Remote compaction, the pure side: detecting the trigger, the summary request MiMo gets, the
stream that answers exactly one sealed `compaction` item, and its expansion on later turns.

Captures from Codex 0.171 (tests/fixtures/codex-0.171/): the HTTP compaction request (whole
history + trigger), the WebSocket compaction frame (incremental), and the frame after the
compaction (user messages kept, the item last; abridged: long texts cut, tools named only).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mimo_asgi._seal import COMPACTION, ReasoningSealer
from mimo_asgi._sse import SSEDecoder
from mimo_asgi.testing import DEFAULT_MODELS, Answer, FakeMimo, Usage
from mimo_asgi.testing._render import Turn, chunks, usage as rendered_usage
from mimo_asgi.testing._validate import Host, validate
from mimo_asgi.translate import _response_object as ro
from mimo_asgi.translate._items import COMPACTED, COMPACTED_ELSEWHERE
from mimo_asgi.translate.compaction import (
    CUT_NOTE, SUMMARY_SYSTEM, SUMMARY_TASK, SUMMARY_TOKENS, CompactionStream, compacted_response, cut_middle,
    render_transcript, summary_request, wants_compaction,
)
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_request import chat_request_from_responses

from unit.invariants import check_responses_stream
from unit.test_responses_stream import sdk_accepts

CAPTURES = Path(__file__).parent.parent / "fixtures" / "codex-0.171"
SEALER = ReasoningSealer("unit-test-key")
SUMMARIES = SEALER.for_purpose(COMPACTION)
HOST = Host(models=frozenset(DEFAULT_MODELS), web_search_plugin=True)
CREATED = 1796183650
SUMMARY = "## Goal\nRun `echo tok` and report what it printed.\n## State\nIt printed `tok`."
USAGE = {"prompt_tokens": 9000, "completion_tokens": 120, "total_tokens": 9120,
         "prompt_tokens_details": {"cached_tokens": 4000}, "completion_tokens_details": {"reasoning_tokens": 0}}


def capture(name: str) -> dict[str, Any]:
    data = json.loads((CAPTURES / name).read_text())
    return data.get("body") or data["frame"]


def http_request() -> dict[str, Any]:
    return capture("http-compaction-request.json")


def post_compaction_frame(blob: str) -> dict[str, Any]:
    """The captured frame after the compaction, with real tools and `blob` in its compaction item."""
    frame = copy.deepcopy(capture("ws-post-compaction-frame.abridged.json"))
    assert frame.pop("type") == "response.create"  # the WebSocket envelope, not a body field
    frame["tools"] = capture("ws-compaction-frame.json")["tools"]
    assert frame["input"][-1]["type"] == "compaction"
    frame["input"][-1]["encrypted_content"] = blob
    return frame


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def call(call_id: str, cmd: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": "exec_command", "arguments": json.dumps({"cmd": cmd})}


def output(call_id: str, text: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": text}


TRIGGER = {"type": "compaction_trigger"}


def summarise(body: dict[str, Any], **kw: Any):
    return summary_request(body, upstream_model=kw.pop("model", "mimo-v2.5-pro"), sealer=SEALER, **kw)


def transcript_of(body: dict[str, Any]) -> str:
    content = body["messages"][1]["content"]
    assert content.startswith("<transcript>\n") and content.endswith(SUMMARY_TASK)
    return content[len("<transcript>\n"):content.index("\n</transcript>")]


def make(request: dict[str, Any] | None = None, secrets: tuple[str, ...] = ()) -> CompactionStream:
    return CompactionStream(request or http_request(), response_id="resp_cmp", model="gpt-5.5", sealer=SEALER,
                            created_at=CREATED, secrets=secrets)


def mimo_chunks(answer: Answer, *, thinking: bool = False) -> list[dict[str, Any]]:
    """The chunks MiMo streams for `answer` (as the fake renders them), usage last."""
    turn = Turn(id="0" * 32, created=CREATED, model="mimo-v2.5-pro", thinking=thinking, include_usage=True)
    return list(chunks(answer, turn, rendered_usage(answer, {}, thinking, 4000)))


def drive(stream: CompactionStream, payloads: list[Any], *, saw_done: bool | None = None) -> list[dict[str, Any]]:
    events = stream.start()
    done = False
    for payload in payloads:
        if payload == "[DONE]":
            done = True
            break
        events += stream.feed(payload)
    return events + stream.finish(saw_done=done if saw_done is None else saw_done)


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


def items_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in response["output"] if i.get("type") == "compaction"]


# ---------------------------------------------------------------- the trigger

def test_the_captured_requests_ask_for_a_compaction_and_the_next_turn_does_not():
    assert wants_compaction(http_request())
    assert wants_compaction(capture("ws-compaction-frame.json"))
    assert not wants_compaction(post_compaction_frame("x"))


@pytest.mark.parametrize("body", [
    {"input": [TRIGGER, user("q")]}, {"input": []}, {"input": "compaction_trigger"}, {"input": [user("q")]},
    {"input": [{"type": "compaction"}]}, {"input": ["compaction_trigger"]}, {}, None, [TRIGGER],
])
def test_only_a_trailing_trigger_asks_for_a_compaction(body):
    assert not wants_compaction(body)


def test_a_trigger_with_an_id_asks_for_a_compaction():
    assert wants_compaction({"input": [user("q"), {"type": "compaction_trigger", "id": "ct_1"}]})


# ---------------------------------------------------------------- the summary request

@pytest.mark.parametrize("model", sorted(DEFAULT_MODELS))
def test_the_summary_request_for_the_captured_history_is_one_mimo_accepts(model):
    t = summarise(http_request(), model=model)
    assert validate(t.body, HOST) is None
    assert set(t.body) == {"model", "messages", "stream", "stream_options", "max_completion_tokens", "thinking"}
    assert t.body["model"] == model
    assert t.body["thinking"] == {"type": "disabled"}
    assert t.body["stream"] is True and t.body["stream_options"] == {"include_usage": True}
    assert t.body["max_completion_tokens"] == SUMMARY_TOKENS
    assert [m["role"] for m in t.body["messages"]] == ["system", "user"]
    assert t.body["messages"][0]["content"] == SUMMARY_SYSTEM
    assert (t.tool_map, t.include_encrypted, t.web_search, t.warnings) == ({}, False, None, [])


def test_the_transcript_holds_the_conversation_in_order_and_not_the_trigger():
    transcript = transcript_of(summarise(http_request()).body)
    order = ["### Instructions\nYou are Codex", "### User\n<environment_context>",
             "### User\nRun `echo tok` with your shell tool",
             '### Assistant called exec_command (call_tok_1)\n{"cmd": "echo tok"}',
             "### Result of exec_command (call_tok_1)\nChunk ID: ce6115"]
    positions = [transcript.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "compaction_trigger" not in transcript
    assert "characters cut" in transcript  # Codex's 21k-character base instructions, cut in the middle
    assert "<permissions instructions>" in transcript  # the end of a long developer message is kept


def test_the_summary_request_is_bounded_whatever_the_history():
    huge = "HEAD-MARK " + "x" * 200_000 + " TAIL-MARK"
    history = [user("Fix the flaky test in tests/test_io.py; do not touch the API.")]
    for i in range(300):
        history += [call(f"c{i}", f"pytest -k case{i}"), output(f"c{i}", huge)]
    history += [user("now the last thing"), TRIGGER]
    t = summarise({"input": history}, max_transcript_chars=100_000)
    transcript = transcript_of(t.body)
    assert len(transcript) <= 100_000
    assert "Fix the flaky test in tests/test_io.py" in transcript  # the start: the goal
    assert transcript.endswith("### User\nnow the last thing")  # the end: the current state
    assert "entries of the conversation left out here" in transcript
    assert "HEAD-MARK" in transcript and "TAIL-MARK" in transcript and "x" * 10_000 not in transcript
    assert validate(t.body, HOST) is None


def test_a_long_tool_output_is_cut_in_the_middle_keeping_both_ends():
    long = "first line\n" + "y" * 50_000 + "\nexit code 3: the last line"
    transcript = transcript_of(summarise({"input": [user("go"), call("c1", "make"), output("c1", long)]}).body)
    assert "first line" in transcript and "exit code 3: the last line" in transcript
    assert "[… " in transcript and "characters cut …]" in transcript
    assert len(transcript) < 10_000


def test_cut_middle():
    assert cut_middle("short", 10) == "short"
    cut = cut_middle("a" * 10 + "b" * 10, 10)
    assert cut == "aaaaa\n[… 10 characters cut …]\nbbbbb"


def test_no_tools_reach_mimo_and_calls_are_readable_text():
    patch = "*** Begin Patch\n*** Update File: src/app.py\n@@\n-old\n+new\n*** End Patch"
    body = {"input": [
        user("patch it"),
        {"type": "custom_tool_call", "call_id": "p1", "name": "apply_patch", "input": patch},
        {"type": "custom_tool_call_output", "call_id": "p1", "output": "Done!"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "I should check the tests."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Patched."}]},
        TRIGGER,
    ], "tools": capture("ws-compaction-frame.json")["tools"], "tool_choice": "required"}
    t = summarise(body)
    assert "tools" not in t.body and "tool_choice" not in t.body
    assert all("tool_calls" not in m for m in t.body["messages"])
    transcript = transcript_of(t.body)
    assert f"### Assistant called apply_patch (p1)\n{patch}" in transcript
    assert "### Result of apply_patch (p1)\nDone!" in transcript
    assert "### Assistant (thinking)\nI should check the tests.\n\n### Assistant\nPatched." in transcript


def test_images_are_marked_not_sent():
    body = {"input": [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "what is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}, TRIGGER]}
    t = summarise(body, model="mimo-v2.5")
    assert "### User\nwhat is this?\n[image]" in transcript_of(t.body)
    assert "data:image" not in json.dumps(t.body)


def test_instructions_come_first():
    t = summarise({"instructions": "Answer in French.", "input": [user("bonjour"), TRIGGER]})
    assert transcript_of(t.body) == "### Instructions\nAnswer in French.\n\n### User\nbonjour"
    t = summarise({"instructions": ["Be brief.", {"role": "developer", "content": "No emojis."}],
                   "input": [user("hi"), TRIGGER]})
    assert transcript_of(t.body) == "### Instructions\nBe brief.\n\n### Instructions\nNo emojis.\n\n### User\nhi"


def test_a_second_compaction_carries_the_first_summary_over():
    earlier = {"type": "compaction", "id": "cmp_1", "encrypted_content": SUMMARIES.seal("We chose SQLite over Redis.")}
    t = summarise({"input": [user("build the cache"), earlier, user("continue"), TRIGGER]})
    transcript = transcript_of(t.body)
    assert "### Summary of still earlier turns\nWe chose SQLite over Redis." in transcript
    assert transcript.index("build the cache") < transcript.index("SQLite") < transcript.index("continue")
    assert COMPACTED not in transcript and t.warnings == []


@pytest.mark.parametrize("blob", ["CAPTURE-OPAQUE-COMPACTION-BLOB", SEALER.seal("a reasoning blob"),
                                  ReasoningSealer("other-gateway").for_purpose(COMPACTION).seal("theirs")])
def test_an_earlier_summary_that_does_not_open_is_noted_not_sent(blob):
    t = summarise({"input": [user("q"), {"type": "compaction", "encrypted_content": blob}, TRIGGER]})
    transcript = transcript_of(t.body)
    assert "### Note\nStill earlier turns were compacted elsewhere" in transcript
    assert blob not in json.dumps(t.body) and "reasoning blob" not in transcript and "theirs" not in transcript
    assert len(t.warnings) == 1 and "compaction" in t.warnings[0]


def test_a_plain_input_string_is_summarised_as_for_the_older_endpoint():
    assert transcript_of(summarise({"input": "summarise me"}).body) == "### User\nsummarise me"


@pytest.mark.parametrize("body, param", [
    ({"input": [user("a"), TRIGGER, user("b"), TRIGGER]}, "input[1].type"),
    ({"input": [TRIGGER]}, "input"),
    ({"input": [{"type": "message", "role": "developer", "content": "only instructions"}, TRIGGER]}, "input"),
    ({"input": [user("a"), TRIGGER], "previous_response_id": "resp_1"}, "previous_response_id"),
    ({"input": None}, "input"),
    ({"input": [user("a"), 5, TRIGGER]}, "input[1]"),
    ({"input": [user("a"), TRIGGER], "instructions": 7}, "instructions"),
])
def test_invalid_compaction_requests_are_a_400_naming_the_field(body, param):
    with pytest.raises(OpenAIError) as err:
        summarise(body)
    assert err.value.status == 400 and err.value.param == param


_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_history_item = st.one_of(
    st.builds(lambda r, t: {"type": "message", "role": r, "content": t},
              st.sampled_from(["user", "assistant", "system", "developer"]), _texts),
    st.builds(lambda i, t: call(i, t), st.sampled_from(["c1", "c2"]), _texts),
    st.builds(lambda i, t: output(i, t), st.sampled_from(["c1", "c2", "c3"]), _texts),
    st.builds(lambda t: {"type": "reasoning", "summary": [{"type": "summary_text", "text": t}]}, _texts),
    st.builds(lambda t: {"type": "compaction", "encrypted_content": SUMMARIES.seal(t)}, _texts),
    st.just({"type": "compaction", "encrypted_content": "foreign"}),
)


def _substantive(item: dict[str, Any]) -> bool:
    """Whether the item leaves something to summarise (reasoning alone does not: it has no turn)."""
    kind = item["type"]
    if kind == "message":
        return item["role"] in ("user", "assistant") and bool(item["content"].strip())
    if kind == "compaction":
        summary = SUMMARIES.unseal(item["encrypted_content"])
        return summary is None or summary.strip() != ""  # one that does not open leaves a note
    return kind in ("function_call", "function_call_output")


@settings(max_examples=300, deadline=None)
@given(st.lists(_history_item, max_size=12), st.integers(200, 5_000), st.sampled_from(sorted(DEFAULT_MODELS)))
def test_any_history_gives_a_bounded_request_mimo_accepts_or_a_400(history, limit, model):
    try:
        t = summarise({"input": [*history, TRIGGER]}, max_transcript_chars=limit, model=model)
    except OpenAIError as err:
        assert (err.status, err.param) == (400, "input") and "nothing to compact" in err.message
        assert not any(_substantive(item) for item in history)
        return
    assert any(_substantive(item) for item in history)
    assert validate(t.body, HOST) is None
    assert len(transcript_of(t.body)) <= limit + 300  # a cut keeps its mark beside what fits


def test_render_transcript_keeps_whole_entries_and_marks_the_gap():
    messages = [{"role": "user", "content": f"message {i} " + "z" * 80} for i in range(100)]
    text = render_transcript(messages, 2_000)
    assert len(text) <= 2_000
    kept = [line for line in text.split("\n") if line.startswith("message ")]
    assert kept[0].startswith("message 0 ") and kept[-1].startswith("message 99 ")
    assert f"[… {100 - len(kept)} entries of the conversation left out here …]" in text


def test_render_transcript_cuts_a_last_entry_larger_than_what_is_left():
    messages = [{"role": "user", "content": "the goal"}, {"role": "user", "content": "A" * 500 + "B" * 5_000}]
    text = render_transcript(messages, 1_000)
    assert text.startswith("### User\nthe goal\n\n### User\nAAA") and text.endswith("BBB")
    assert "characters cut" in text and "left out" not in text and len(text) < 1_100


# ---------------------------------------------------------------- the stream

def test_a_summary_streams_as_exactly_one_sealed_compaction_item():
    stream = make()
    events = drive(stream, [*mimo_chunks(Answer(text=SUMMARY, usage=Usage(9000, 120, cached_tokens=4000))), "[DONE]"])
    assert types(events) == ["created", "in_progress", "output_item.added", "output_item.done", "completed"]
    response = check_responses_stream(events)
    sdk_accepts(events)
    item = events[3]["item"]
    assert events[2]["item"] == item and events[2]["output_index"] == events[3]["output_index"] == 0
    assert set(item) == {"type", "id", "encrypted_content"} and item["type"] == "compaction"
    assert item["id"].startswith("cmp_")
    assert response["output"] == [item] and response["status"] == "completed"
    assert SUMMARIES.unseal(item["encrypted_content"]) == SUMMARY
    assert SEALER.unseal(item["encrypted_content"]) is None  # not a reasoning blob
    assert "echo tok" not in item["encrypted_content"]
    assert response["usage"]["input_tokens"] == 9000 and response["usage"]["output_tokens"] == 120
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 4000
    assert response["model"] == "gpt-5.5" and response["id"] == "resp_cmp"
    assert stream.response == response and stream.done


def test_usage_is_reported_as_the_responses_stream_reports_it():
    stream = make()
    body_chunk = {"choices": [{"index": 0, "delta": {"content": "summary"}, "finish_reason": "stop"}]}
    events = drive(stream, [body_chunk, {"choices": [], "usage": USAGE}, "[DONE]"])
    assert stream.usage == USAGE  # raw, for the log line, on_usage and metrics
    assert events[-1]["response"]["usage"] == ro.map_usage(USAGE)
    no_usage = make()
    drive(no_usage, [body_chunk, "[DONE]"])
    assert no_usage.usage is None and no_usage.response["usage"] == ro.map_usage(None)


def test_nothing_of_the_item_is_emitted_before_the_end():
    stream = make()
    assert not stream.emitted_content and stream.response["output"] == []
    for chunk in mimo_chunks(Answer(text=SUMMARY)):
        assert not [e for e in stream.feed(chunk) if "output_item" in e["type"]]
        assert not stream.emitted_content and not stream.done
    assert stream.response["status"] == "in_progress" and stream.response["output"] == []
    stream.finish(saw_done=True)
    assert stream.emitted_content and stream.done


def test_reasoning_is_not_part_of_the_summary():
    stream = make()
    events = drive(stream, [*mimo_chunks(Answer(text=SUMMARY, reasoning="secret musings"), thinking=True), "[DONE]"])
    assert SUMMARIES.unseal(items_of(check_responses_stream(events))[0]["encrypted_content"]) == SUMMARY


def test_non_stream_clients_get_the_final_response_object():
    stream = make({"model": "gpt-5.5", "input": [user("q"), TRIGGER], "stream": False})
    drive(stream, [*mimo_chunks(Answer(text="  " + SUMMARY + "\n")), "[DONE]"])
    final = stream.response
    assert final["object"] == "response" and final["status"] == "completed"
    assert len(final["output"]) == 1 and final["output"][0]["type"] == "compaction"
    assert SUMMARIES.unseal(final["output"][0]["encrypted_content"]) == SUMMARY  # surrounding blanks dropped


@pytest.mark.parametrize("payloads, code", [
    ([{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]}, "[DONE]"],
     "empty_response"),
    ([{"choices": [{"index": 0, "delta": {"content": " \n "}, "finish_reason": "stop"}]}, "[DONE]"], "empty_response"),
    ([{"choices": [{"index": 0, "delta": {"reasoning_content": "only thinking"}, "finish_reason": "stop"}]},
      "[DONE]"], "empty_response"),
    (["[DONE]"], "empty_response"),
    ([{"choices": [{"index": 0, "delta": {"content": "half a summ"}}]}], "stream_truncated"),
    ([], "stream_truncated"),
    ([{"choices": [{"index": 0, "delta": {"content": "Goal: x"}}]},
      {"error": {"code": "500", "message": "boom sk-abcdefghijklmnop", "param": "", "type": ""}}], "upstream_error"),
    ([{"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "content_filter"}]}, "[DONE]"],
     "content_filter"),
])
def test_anything_but_a_summary_fails_with_no_item(payloads, code):
    stream = make(secrets=("sk-abcdefghijklmnop",))
    events = drive(stream, payloads)
    response = check_responses_stream(events)
    assert types(events) == ["created", "in_progress", "failed"]
    assert response["status"] == "failed" and response["output"] == [] and response["error"]["code"] == code
    assert "sk-abcdefghijklmnop" not in json.dumps(events)
    assert not stream.emitted_content and stream.done
    sdk_accepts(events)


def test_a_summary_cut_at_the_length_limit_still_completes_and_says_so():
    stream = make()
    events = drive(stream, [*mimo_chunks(Answer(text=SUMMARY, finish_reason="length")), "[DONE]"])
    item = items_of(check_responses_stream(events))[0]
    assert events[-1]["type"] == "response.completed"
    assert SUMMARIES.unseal(item["encrypted_content"]) == SUMMARY + CUT_NOTE


def test_done_without_a_finish_reason_after_text_completes():
    events = drive(make(), [{"choices": [{"index": 0, "delta": {"content": SUMMARY}}]}, "[DONE]"])
    assert len(items_of(check_responses_stream(events))) == 1


def test_after_the_terminal_nothing_more_comes_out():
    stream = make()
    drive(stream, [*mimo_chunks(Answer(text=SUMMARY)), "[DONE]"])
    assert stream.feed({"choices": [{"index": 0, "delta": {"content": "more"}}]}) == []
    assert stream.finish(saw_done=True) == [] and stream.fail(OpenAIError(502, "late")) == []
    assert stream.start() == [] and stream.response["status"] == "completed"
    assert stream.forward(b'data: {"choices":[]}\n\n') is None


def test_fail_before_start_still_starts_the_stream():
    events = make().fail(OpenAIError(504, "MiMo upstream timed out", code="upstream_timeout"))
    assert types(events) == ["created", "in_progress", "failed"]
    check_responses_stream(events)


def test_feed_before_start_starts_the_stream():
    stream = make()
    events = stream.feed({"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]})
    assert types(events) == ["created", "in_progress"]
    assert types(events + stream.finish(saw_done=True))[-1] == "completed"


_content = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_chunk = st.one_of(
    st.builds(lambda t: {"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]}, _content),
    st.builds(lambda t: {"choices": [{"index": 0, "delta": {"reasoning_content": t}}]}, _content),
    st.builds(lambda t: {"choices": [{"index": 1, "delta": {"content": t}}]}, _content),
    st.builds(lambda r: {"choices": [{"index": 0, "delta": {}, "finish_reason": r}]},
              st.sampled_from(["stop", "length", "content_filter", "tool_calls", None])),
    st.just({"choices": [], "usage": USAGE}),
    st.just({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "x"}}]}}]}),
    st.just({"error": {"code": "500", "message": "in-band", "param": "", "type": ""}}),
    st.sampled_from([{}, {"choices": None}, {"choices": [None]}, {"choices": [{"delta": "text"}]}]),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_chunk, max_size=15), st.sampled_from(["done", "eof", "fail"]))
def test_any_chunks_give_one_terminal_and_exactly_one_item_or_none(payloads, end):
    stream = make()
    events = stream.start()
    for payload in payloads:
        events += stream.feed(payload)
    if end == "fail":
        events += stream.fail(OpenAIError(502, "cut", code="stream_truncated"))
    else:
        events += stream.finish(saw_done=end == "done")
    response = check_responses_stream(events)
    assert stream.done and stream.response == response
    assert {e["type"] for e in events} <= {"response.created", "response.in_progress", "response.output_item.added",
                                           "response.output_item.done", "response.completed", "response.failed"}
    if response["status"] == "completed":
        assert len(response["output"]) == 1 and response["output"][0]["type"] == "compaction"
        assert SUMMARIES.unseal(response["output"][0]["encrypted_content"]).strip()
        assert stream.emitted_content
    else:
        assert response["status"] == "failed" and response["output"] == [] and not stream.emitted_content
        assert not any("output_item" in e["type"] for e in events)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300).filter(str.strip),
       st.integers(1, 40), st.booleans())
def test_any_cut_of_the_summary_into_chunks_seals_exactly_the_summary(text, size, thinking):
    events = drive(make(), [*mimo_chunks(Answer(text=text, chunk_size=size), thinking=thinking), "[DONE]"])
    [item] = check_responses_stream(events)["output"]
    assert SUMMARIES.unseal(item["encrypted_content"]) == text.strip()


# ---------------------------------------------------------------- expansion on the next turn

def test_the_captured_next_turn_gets_the_summary_in_place_of_the_item_and_mimo_accepts_it():
    frame = post_compaction_frame(SUMMARIES.seal(SUMMARY))
    t = chat_request_from_responses(frame, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    messages = t.body["messages"]
    assert messages[-1] == {"role": "system", "content": COMPACTED + SUMMARY}  # the item was last: so is the summary
    assert messages[-2]["role"] == "user" and "echo tok" in messages[-2]["content"]
    assert t.body["thinking"] == {"type": "enabled"} and not [w for w in t.warnings if "compaction" in w]
    assert validate(t.body, HOST) is None


def test_the_captured_opaque_blob_is_dropped_with_one_warning_and_a_note_in_its_place():
    frame = capture("ws-post-compaction-frame.abridged.json")
    frame = post_compaction_frame(frame["input"][-1]["encrypted_content"])
    t = chat_request_from_responses(frame, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    assert t.body["messages"][-1] == {"role": "system", "content": COMPACTED_ELSEWHERE}
    assert "CAPTURE-OPAQUE-COMPACTION-BLOB" not in json.dumps(t.body)
    assert t.warnings == ["dropped a compaction item whose encrypted_content was not issued by this gateway"]
    assert validate(t.body, HOST) is None


def expand(blob: Any, sealer: ReasoningSealer = SEALER, **extra: Any) -> Any:
    item = {"type": "compaction", "encrypted_content": blob, **extra}
    return chat_request_from_responses({"input": [user("task"), item, user("go on")]},
                                       upstream_model="mimo-v2.5-pro", sealer=sealer)


def test_a_blob_without_an_id_expands_in_place():
    t = expand(SUMMARIES.seal("the state"))
    assert t.body["messages"] == [{"role": "user", "content": "task"},
                                  {"role": "system", "content": COMPACTED + "the state"},
                                  {"role": "user", "content": "go on"}]


def test_the_older_compaction_summary_item_expands_too():
    t = chat_request_from_responses(
        {"input": [{"type": "compaction_summary", "encrypted_content": SUMMARIES.seal("s")}, user("q")]},
        upstream_model="mimo-v2.5-pro", sealer=SEALER)
    assert t.body["messages"][0] == {"role": "system", "content": COMPACTED + "s"}


def _tampered(blob: str) -> str:
    return blob[:-6] + ("AAAAAA" if not blob.endswith("AAAAAA") else "BBBBBB")


@pytest.mark.parametrize("blob", [
    pytest.param(SEALER.seal("reasoning text"), id="a reasoning blob"),
    pytest.param(_tampered(SUMMARIES.seal("the state")), id="tampered"),
    pytest.param(ReasoningSealer("another-gateway").for_purpose(COMPACTION).seal("theirs"), id="another gateway"),
    pytest.param("gAAAAABopenai-compaction-blob", id="OpenAI's"),
    pytest.param(None, id="missing"),
    pytest.param(12, id="not a string"),
])
def test_a_blob_that_does_not_open_is_never_forwarded(blob):
    t = expand(blob)
    assert t.body["messages"][1] == {"role": "system", "content": COMPACTED_ELSEWHERE}
    sent = json.dumps(t.body)
    assert "reasoning text" not in sent and "theirs" not in sent and "the state" not in sent
    assert (not isinstance(blob, str)) or blob not in sent
    assert len([w for w in t.warnings if "compaction" in w]) == 1


def test_rotation_a_summary_opens_while_its_key_is_listed():
    blob = ReasoningSealer("old-key").for_purpose(COMPACTION).seal("before the rotation")
    rotated = expand(blob, ReasoningSealer(["new-key", "old-key"]))
    assert rotated.body["messages"][1]["content"] == COMPACTED + "before the rotation"
    retired = expand(blob, ReasoningSealer(["new-key"]))
    assert retired.body["messages"][1]["content"] == COMPACTED_ELSEWHERE


def test_a_summary_between_a_call_and_its_output_keeps_the_pairing_mimo_requires():
    body = {"input": [user("q"), call("c1", "ls"), {"type": "compaction", "encrypted_content": SUMMARIES.seal("s")},
                      output("c1", "a b"), user("next")], "reasoning": {"effort": "high"}}
    t = chat_request_from_responses(body, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    assert [m["role"] for m in t.body["messages"]] == ["user", "assistant", "tool", "system", "user"]
    assert validate(t.body, HOST) is None


@pytest.mark.parametrize("items", [[user("q"), TRIGGER], [TRIGGER, user("q")], [user("a"), TRIGGER, user("b")]])
def test_a_trigger_outside_a_compaction_request_is_a_400_naming_it(items):
    with pytest.raises(OpenAIError) as err:
        chat_request_from_responses({"input": items}, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    index = next(i for i, item in enumerate(items) if item is TRIGGER)
    assert err.value.status == 400 and err.value.param == f"input[{index}].type"
    assert err.value.code == "unsupported_input_item" and "compaction_trigger" in err.value.message


# ---------------------------------------------------------------- the whole round, against the fake

async def _fake_stream(fake: FakeMimo, body: dict[str, Any]) -> list[Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
        reply = await client.post("/v1/chat/completions", json=body,
                                  headers={"authorization": f"Bearer {fake.api_key}"})
    assert reply.status_code == 200, reply.text
    decoder = SSEDecoder()
    events = decoder.feed(reply.content) + decoder.close()
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in events]


def test_round_trip_through_the_fake_summary_then_expansion():
    fake = FakeMimo()
    fake.queue(Answer(text=SUMMARY, usage=Usage(prompt_tokens=5000, completion_tokens=60)))
    request = http_request()
    t = summarise(request)
    payloads = anyio.run(_fake_stream, fake, t.body)
    stream = make(request)
    events = drive(stream, payloads)
    [item] = check_responses_stream(events)["output"]
    assert stream.response["usage"]["input_tokens"] == 5000 and stream.response["usage"]["output_tokens"] == 60
    assert fake.requests[0].body == t.body

    # Codex's next request: its kept messages, then the item (with the id we gave it).
    following = post_compaction_frame(item["encrypted_content"])
    following["input"][-1]["id"] = item["id"]
    nxt = chat_request_from_responses(following, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    assert nxt.body["messages"][-1]["content"] == COMPACTED + SUMMARY
    fake.queue(Answer(text="It printed tok."))
    assert anyio.run(_fake_stream, fake, nxt.body)[-1] == "[DONE]"  # the fake (MiMo's rules) accepted it


# ---------------------------------------------------------------- the older endpoint

def test_the_older_endpoint_reply_is_the_user_messages_then_the_item():
    request = http_request()
    stream = make(request)
    drive(stream, [*mimo_chunks(Answer(text=SUMMARY, usage=Usage(700, 30))), "[DONE]"])
    reply = compacted_response(request, stream.response)
    assert reply["object"] == "response.compaction" and reply["id"] == "resp_cmp"
    assert reply["created_at"] == CREATED and reply["usage"]["input_tokens"] == 700
    users = [i for i in request["input"] if i.get("role") == "user"]
    assert reply["output"][:-1] == users and len(users) == 2
    assert reply["output"][-1] == stream.response["output"][0]
    assert compacted_response({"input": "hello"}, stream.response)["output"][0]["role"] == "user"
