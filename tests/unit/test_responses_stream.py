"""Golden tests for the MiMo chunks -> Responses events state machine.

Fixtures in tests/fixtures/streams/*.json are the SSE `data:` payloads of a MiMo stream
in order: chunk objects (or in-band `{"error": ...}` objects), and the string "[DONE]"
where the upstream sent `data: [DONE]` (absent when the connection just ended).
Every stream is checked by the invariant checker and by the openai SDK's own accumulator.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import omit
from openai._models import construct_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from mimo_asgi import _json
from mimo_asgi._seal import ReasoningSealer
from mimo_asgi.translate._input_stream import InputExtractor
from mimo_asgi.translate._tools import ToolSpec
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_stream import ResponsesStream

from unit.invariants import check_responses_stream

FIXTURES = Path(__file__).parent.parent / "fixtures" / "streams"
CODEX_REQUEST = Path("/work/shared/fixtures/codex-0.169-request-gpt-5.5.json")
CREATED = 1795475624
TOOLS = {
    "apply_patch": ToolSpec("custom", "apply_patch"),
    "multi_agent_v1__spawn_agent": ToolSpec("function", "spawn_agent", "multi_agent_v1"),
    "shell": ToolSpec("local_shell", "local_shell"),
    "tool_search": ToolSpec("tool_search", "tool_search"),
    "exec_command": ToolSpec("function", "exec_command"),
}
_EVENT_CLASSES = {
    cls.model_fields["type"].annotation.__args__[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}
# The SDK types response.error.code as a closed Literal of OpenAI's own codes; Codex acts on
# others (context_length_exceeded, ...) and the SDK itself parses leniently, so the strict
# model check swaps in a listed code. The real code is asserted by the tests.
_SDK_ERROR_CODES = set(typing.get_args(Response.model_fields["error"].annotation)[0].model_fields["code"].annotation.__args__)


def load(name: str) -> list[Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def make(request: dict | None = None, *, sealer: ReasoningSealer | None = None, include: bool = False,
         tools: dict[str, ToolSpec] | None = None) -> ResponsesStream:
    return ResponsesStream(request or {"model": "gpt-5.5", "input": "hi"}, response_id="resp_test", model="gpt-5.5",
                           tool_map=TOOLS if tools is None else tools, sealer=sealer, include_encrypted=include,
                           created_at=CREATED)


def drive(stream: ResponsesStream, payloads: list[Any], *, eof_done: bool | None = None) -> list[dict[str, Any]]:
    events = stream.start()
    saw_done = False
    for payload in payloads:
        if payload == "[DONE]":
            saw_done = True
            break
        events += stream.feed(payload)
    events += stream.finish(saw_done=saw_done if eof_done is None else eof_done)
    return events


def sdk_accepts(events: list[dict[str, Any]]) -> None:
    """Each event validates as its openai SDK type and the SDK's accumulator takes the stream."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        _json.dumps(event)  # encodable as one SSE data line
        strict = json.loads(json.dumps(event))
        if isinstance((strict.get("response") or {}).get("error"), dict):
            if strict["response"]["error"]["code"] not in _SDK_ERROR_CODES:
                strict["response"]["error"]["code"] = "server_error"
        _EVENT_CLASSES[event["type"]].model_validate(strict)
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=event))  # type: ignore[arg-type]
    Response.model_validate(strict["response"])


def run(name: str, **kwargs: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    events = drive(make(**kwargs), load(name))
    response = check_responses_stream(events)
    sdk_accepts(events)
    return events, response


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


def deltas(events: list[dict[str, Any]], kind: str, item_id: str) -> list[str]:
    return [e["delta"] for e in events if e["type"] == f"response.{kind}.delta" and e["item_id"] == item_id]


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_every_recorded_stream_keeps_the_invariants_and_the_sdk_accepts_it(name: str) -> None:
    events, response = run(name)
    assert response["model"] == "gpt-5.5"  # the client's name, never the upstream's
    assert all(e["type"] != "response.usage" for e in events)


def test_text_only() -> None:
    events, response = run("text_only")
    assert types(events) == [
        "created", "in_progress", "output_item.added", "content_part.added",
        "output_text.delta", "output_text.delta", "output_text.delta", "output_text.done",
        "content_part.done", "output_item.done", "completed",
    ]
    part = events[3]["part"]
    assert part == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    message = response["output"][0]
    assert message["type"] == "message" and message["id"].startswith("msg_") and message["status"] == "completed"
    assert message["content"] == [{"type": "output_text", "text": "Hello, world!", "annotations": [], "logprobs": []}]
    assert response["status"] == "completed" and response["completed_at"] >= CREATED
    assert response["usage"]["input_tokens"] == 21 and response["usage"]["output_tokens"] == 3
    assert response["usage"]["total_tokens"] == 24


def test_reasoning_then_text_with_sealed_reasoning() -> None:
    sealer = ReasoningSealer.random()
    events, response = run("reasoning_text", sealer=sealer, include=True)
    reasoning, message = response["output"]
    assert [reasoning["type"], message["type"]] == ["reasoning", "message"]
    text = "The user wants a haiku about autumn.\n"
    assert reasoning["summary"] == [{"type": "summary_text", "text": text}]
    assert reasoning["id"].startswith("rs_") and reasoning["status"] == "completed"
    assert reasoning["encrypted_content"] != text and sealer.unseal(reasoning["encrypted_content"]) == text
    assert message["content"][0]["text"] == "Crimson leaves drift down,\nquiet rivers carry them,\nthe year exhales slow."
    rs_done = next(e for e in events if e["type"] == "response.output_item.done")
    assert rs_done["output_index"] == 0 and rs_done["item"] == reasoning
    assert types(events).index("reasoning_summary_part.done") < types(events).index("content_part.added")
    assert response["usage"] == {
        "input_tokens": 35, "input_tokens_details": {"cached_tokens": 16, "cache_write_tokens": 0},
        "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 75,
    }


def test_reasoning_has_no_encrypted_content_unless_included() -> None:
    _, response = run("reasoning_text", sealer=ReasoningSealer.random(), include=False)
    assert "encrypted_content" not in response["output"][0]
    _, response = run("reasoning_text", sealer=None, include=True)
    assert response["output"][0].get("encrypted_content") is None


def test_parallel_calls_with_index_gaps_interleaving_and_a_late_name() -> None:
    events, response = run("parallel_calls")
    reasoning, first, second, third = response["output"]
    assert reasoning["summary"][0]["text"] == "Two independent lookups; run them in parallel."
    assert first == {"type": "function_call", "id": first["id"], "call_id": "call_5f1c0e2b9a7d4c3e8f6a1b2c",
                     "name": "exec_command", "arguments": "{\"cmd\": \"ls -la\"}", "status": "completed"}
    assert second["name"] == "view_image" and second["call_id"] == "call_0d9e8f7a6b5c4d3e2f1a0b9c"
    assert second["arguments"] == "{\"path\": \"a.png\"}"
    assert third["name"] == "get_goal" and third["arguments"] == "{}"
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert all(c["id"].startswith("fc_") and c["id"] != c["call_id"] for c in (first, second, third))
    assert deltas(events, "function_call_arguments", first["id"]) == ["{\"cmd\":", " \"ls -la\"}"]
    assert deltas(events, "function_call_arguments", third["id"]) == ["{}"]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [e["item"]["name"] for e in added[1:]] == ["exec_command", "view_image", "get_goal"]
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 512


def test_custom_apply_patch_streams_the_raw_input() -> None:
    events, response = run("custom_apply_patch")
    call = response["output"][1]
    patch = ("*** Begin Patch\n*** Update File: src/app.py\n@@ def greet():\n-    print(\"hi\")\n"
             "+    print(\"hello, \\\"world\\\"\")  # é 😀\n*** End Patch\n")
    assert call == {"type": "custom_tool_call", "id": call["id"], "call_id": "call_3e2d1c0b9a8f7e6d5c4b3a29",
                    "name": "apply_patch", "input": patch, "status": "completed"}
    assert call["id"].startswith("ctc_")
    pieces = deltas(events, "custom_tool_call_input", call["id"])
    assert len(pieces) > 5 and "".join(pieces) == patch  # incremental, not one blob at the end
    assert not any(e["type"].startswith("response.function_call_arguments") for e in events)


def test_custom_tool_with_other_arguments_gets_the_raw_arguments() -> None:
    stream = make()
    events = drive(stream, [_call_chunk(0, "call_x", "apply_patch", "{\"patch\": \"x\"}"), _finish("tool_calls")])
    response = check_responses_stream(events)
    sdk_accepts(events)
    assert response["output"][0]["input"] == "{\"patch\": \"x\"}"


def test_namespace_call_comes_back_with_inner_name_and_namespace() -> None:
    events, response = run("namespace_call")
    call = response["output"][0]
    assert call["type"] == "function_call" and call["name"] == "spawn_agent"
    assert call["namespace"] == "multi_agent_v1" and call["arguments"] == "{\"task\": \"review the diff\"}"
    assert events[2]["item"]["namespace"] == "multi_agent_v1"


def test_local_shell_call() -> None:
    events, response = run("local_shell")
    message, call = response["output"]
    assert message["content"][0]["text"] == "Let me look."
    assert call == {"type": "local_shell_call", "id": call["id"], "call_id": "call_1234567890abcdef12345678",
                    "status": "completed", "action": {"type": "exec", "command": ["bash", "-lc", "ls"],
                                                      "working_directory": "/tmp", "timeout_ms": 10000, "env": {}}}
    assert not any("arguments" in e["type"] or "input" in e["type"] for e in events)


def test_tool_search_call_has_codex_shape() -> None:
    _, response = run("tool_search")
    call = response["output"][0]
    assert call == {"type": "tool_search_call", "id": call["id"], "call_id": "call_feedfacefeedfacefeedface",
                    "status": "completed", "execution": "client",
                    "arguments": {"query": "calendar create", "limit": 1}}


def test_reasoning_after_a_tool_call_opens_a_new_reasoning_item() -> None:
    _, response = run("interleaved_reasoning", sealer=ReasoningSealer.random(), include=True)
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "function_call", "reasoning", "function_call", "message"]
    first, second = response["output"][0], response["output"][2]
    assert first["id"] != second["id"]
    assert first["summary"][0]["text"] == "First list the files."
    assert second["summary"][0]["text"] == "Then read the README."
    assert response["output"][3]["arguments"] == "{\"cmd\": \"cat README.md\"}"


def test_length_cut_is_incomplete_with_max_output_tokens() -> None:
    _, response = run("length_cut")
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    reasoning, message = response["output"]
    assert reasoning["status"] == "completed" and message["status"] == "incomplete"
    assert message["content"][0]["text"] == "The history of Rome begins with"


def test_content_filter_is_incomplete_with_content_filter() -> None:
    events, response = run("content_filter")
    assert events[-1]["type"] == "response.incomplete"
    assert response["incomplete_details"] == {"reason": "content_filter"}


def test_in_band_error_after_text_fails_leaving_the_cut_message_out() -> None:
    events, response = run("error_after_text")
    assert events[-1]["type"] == "response.failed"
    assert response["error"]["code"] == "upstream_error" and "Internal Server Error" in response["error"]["message"]
    # the cut message was streamed but never finished: Codex must neither show it as an answer nor replay it
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Partial answer"
    assert not [e for e in events if e["type"] == "response.output_item.done" and e["item"]["type"] == "message"]
    assert [i["type"] for i in response["output"]] == [i["type"] for i in response["output"] if i["status"] == "completed"]


def test_in_band_rate_limit_keeps_codex_retry_code() -> None:
    stream = make()
    events = stream.start() + stream.feed({"error": {"code": "429", "message": "Too many requests"}})
    response = check_responses_stream(events)
    assert response["error"]["code"] == "rate_limit_exceeded"
    assert stream.done and stream.feed(_text_chunk("late")) == [] and stream.finish(saw_done=True) == []


def test_truncated_stream_fails() -> None:
    events, response = run("truncated")
    assert events[-1]["type"] == "response.failed"
    assert response["error"]["code"] == "stream_truncated"
    assert [(i["type"], i["status"]) for i in response["output"]] == [("reasoning", "completed")]  # it had ended


def test_end_of_body_after_finish_reason_completes_without_done() -> None:
    events = drive(make(), load("text_only")[:-1], eof_done=False)
    assert check_responses_stream(events)["status"] == "completed"


def test_done_with_usage_in_a_trailing_empty_choices_chunk() -> None:
    events, response = run("usage_trailing")
    assert types(events)[-2:] == ["output_item.done", "completed"]
    assert response["usage"] == {
        "input_tokens": 12, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 14,
    }


def test_usage_property_is_the_raw_upstream_usage() -> None:
    stream = make()
    drive(stream, load("usage_trailing"))
    assert stream.usage is not None and stream.usage["prompt_tokens"] == 12
    assert stream.response["usage"]["total_tokens"] == 14


def test_compound_delta_is_split_reasoning_then_text_then_call() -> None:
    events, response = run("compound_delta")
    assert [i["type"] for i in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["output"][0]["summary"][0]["text"] == "Quick: just call it."
    assert response["output"][1]["content"][0]["text"] == "Sure."
    assert response["output"][2]["arguments"] == "{\"cmd\": \"pwd\"}"
    order = types(events)
    assert order.index("reasoning_summary_text.delta") < order.index("output_text.delta") < order.index(
        "function_call_arguments.delta")


@pytest.mark.parametrize("name", ["empty", "role_only"])
def test_empty_stream_fails(name: str) -> None:
    events, response = run(name)
    assert types(events) == ["created", "in_progress", "failed"]
    assert response["output"] == [] and response["error"]["code"] == "empty_response"


def test_web_search_annotations_and_call_item() -> None:
    events, response = run("web_search")
    reasoning, search, message = response["output"]
    assert reasoning["type"] == "reasoning"
    assert search == {"type": "web_search_call", "id": search["id"], "status": "completed",
                      "action": {"type": "search", "query": "", "sources": [
                          {"type": "url", "url": "https://example.org/weather"},
                          {"type": "url", "url": "https://news.example.com/a"}]}}
    assert search["id"].startswith("ws_")
    annotations = message["content"][0]["annotations"]
    assert annotations == [
        {"type": "url_citation", "url": "https://example.org/weather", "title": "Weather today",
         "start_index": 0, "end_index": 0},
        {"type": "url_citation", "url": "https://news.example.com/a", "title": "News", "start_index": 0, "end_index": 0},
    ]
    order = types(events)
    assert order.index("output_text.delta") < order.index("output_text.annotation.added") < order.index(
        "output_text.done")


def test_fail_drops_open_and_buffered_calls() -> None:
    stream = make()
    events = stream.start()
    events += stream.feed(_call_chunk(0, "call_a", "exec_command", "{\"cmd\""))
    events += stream.feed(_call_chunk(1, "call_b", None, "{\"x\": 1}"))
    assert stream.emitted_content
    events += stream.fail(OpenAIError(504, "MiMo upstream timed out", code="upstream_timeout"))
    response = check_responses_stream(events)
    sdk_accepts(events)
    assert response["error"] == {"code": "upstream_timeout", "message": "MiMo upstream timed out"}
    assert response["output"] == []  # a cut call is never done, so Codex never runs it
    assert not [e for e in events if e["type"] == "response.output_item.done"]
    assert stream.fail(OpenAIError(500, "again")) == [] and stream.finish(saw_done=True) == []


def test_invalid_arguments_are_not_rewritten() -> None:
    events = drive(make(), [_call_chunk(None, "call_q", "exec_command", "{\"cmd\": \"ls"), _finish("tool_calls")])
    response = check_responses_stream(events)
    assert response["output"][0]["arguments"] == "{\"cmd\": \"ls"


def test_a_call_whose_name_never_arrives_is_still_emitted() -> None:
    events = drive(make(), [_call_chunk(2, "call_n", None, "{}"), _finish("tool_calls")])
    response = check_responses_stream(events)
    sdk_accepts(events)
    assert response["output"][0]["call_id"] == "call_n" and response["output"][0]["arguments"] == "{}"


def test_calls_without_index_are_told_apart_by_id_and_fragments_follow_the_last_call() -> None:
    chunks = [_call_chunk(None, "call_1", "exec_command", "{\"cmd\": "), _call_chunk(None, None, None, "\"a\"}"),
              _call_chunk(None, "call_2", "exec_command", "{\"cmd\": \"b\"}"), _finish("tool_calls")]
    response = check_responses_stream(drive(make(), chunks))
    assert [(c["call_id"], c["arguments"]) for c in response["output"]] == [
        ("call_1", "{\"cmd\": \"a\"}"), ("call_2", "{\"cmd\": \"b\"}")]


def test_a_new_id_on_a_reused_index_is_a_new_call() -> None:
    chunks = [_call_chunk(0, "call_1", "exec_command", "{}"), _call_chunk(0, "call_2", "exec_command", "{\"a\":1}"),
              _finish("tool_calls")]
    response = check_responses_stream(drive(make(), chunks))
    assert [c["call_id"] for c in response["output"]] == ["call_1", "call_2"]


def test_call_ids_stay_unique_and_never_change_once_announced() -> None:
    chunks = [_call_chunk(0, "call_d", "exec_command", "{}"), _call_chunk(1, "call_d", "exec_command", "{}"),
              _call_chunk(2, None, "exec_command", ""), _call_chunk(2, "call_late", None, "{}"), _finish("tool_calls")]
    events = drive(make(), chunks)
    response = check_responses_stream(events)
    sdk_accepts(events)
    ids = [c["call_id"] for c in response["output"]]
    assert ids[:2] == ["call_d", "call_d_2"] and len(set(ids)) == 3


def test_missing_call_id_gets_a_fresh_one() -> None:
    response = check_responses_stream(drive(make(), [_call_chunk(0, None, "exec_command", "{}"), _finish("stop")]))
    call = response["output"][0]
    assert call["call_id"].startswith("call_") and len(call["call_id"]) > 10 and call["id"] != call["call_id"]


def test_unknown_names_are_plain_function_calls() -> None:
    response = check_responses_stream(drive(make(tools={}), [_call_chunk(0, "c", "apply_patch", "{\"input\": \"x\"}"),
                                                             _finish("tool_calls")]))
    assert response["output"][0]["type"] == "function_call" and response["output"][0]["name"] == "apply_patch"


def test_only_choice_zero_is_translated() -> None:
    chunk = {"choices": [{"index": 1, "delta": {"content": "other"}, "finish_reason": None},
                         {"index": 0, "delta": {"content": "mine"}, "finish_reason": None}]}
    response = check_responses_stream(drive(make(), [chunk, _finish("stop")]))
    assert response["output"][0]["content"][0]["text"] == "mine"


def test_role_only_and_empty_deltas_emit_nothing() -> None:
    stream = make()
    stream.start()
    assert stream.feed({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}) == []
    assert stream.feed({"choices": [{"index": 0, "delta": {}}]}) == []
    assert stream.feed({"choices": []}) == [] and not stream.emitted_content


def test_created_snapshot_echoes_codex_request_with_defaults() -> None:
    request = json.loads(CODEX_REQUEST.read_text())["body"]
    stream = ResponsesStream(request, response_id="resp_abc", model="gpt-5.5", tool_map=TOOLS, sealer=None,
                             include_encrypted=True, created_at=CREATED)
    created, in_progress = stream.start()
    snap = created["response"]
    assert (created["type"], created["sequence_number"], in_progress["sequence_number"]) == ("response.created", 0, 1)
    assert snap["id"] == "resp_abc" and snap["status"] == "in_progress" and snap["output"] == []
    assert snap["created_at"] == CREATED and snap["completed_at"] is None and snap["usage"] is None
    assert snap["tools"] == request["tools"] and snap["store"] is False
    assert snap["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert snap["reasoning"] == {"effort": "medium", "summary": None}
    assert snap["prompt_cache_key"] == request["prompt_cache_key"]
    assert (snap["temperature"], snap["top_p"], snap["top_logprobs"], snap["truncation"]) == (1.0, 1.0, 0, "disabled")
    assert snap["service_tier"] == "default" and snap["background"] is False and snap["metadata"] == {}
    Response.model_validate(snap)


def test_minimal_request_snapshot_has_every_open_responses_field() -> None:
    snap = make().start()[0]["response"]
    for key in ("instructions", "previous_response_id", "max_output_tokens", "max_tool_calls", "safety_identifier",
                "prompt_cache_key", "user", "reasoning", "error", "incomplete_details"):
        assert key in snap and snap[key] is None, key
    assert snap["tools"] == [] and snap["tool_choice"] == "auto" and snap["parallel_tool_calls"] is True
    assert snap["presence_penalty"] == 0.0 and snap["frequency_penalty"] == 0.0 and snap["store"] is True


def test_usage_is_null_safe() -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": None,
                       "completion_tokens_details": None}}
    usage = check_responses_stream(drive(make(), [chunk, "[DONE]"]))["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 0 and usage["total_tokens"] == 6
    no_usage = check_responses_stream(drive(make(), [_text_chunk("x"), _finish("stop")]))["usage"]
    assert (no_usage["input_tokens"], no_usage["output_tokens"], no_usage["total_tokens"]) == (0, 0, 0)


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=6)
_OPS = st.one_of(
    st.tuples(st.just("reasoning"), _TEXT),
    st.tuples(st.just("content"), _TEXT),
    st.tuples(st.just("call"), st.sampled_from([0, 1, 3, None]), st.sampled_from([None, "call_a", "call_b"]),
              st.sampled_from([None, "exec_command", "apply_patch", "shell", "tool_search", "mystery"]),
              st.sampled_from(["", "{", "\"input\": \"a\\", "n\"", "}", "x"])),
    st.tuples(st.just("annotations")),
    st.tuples(st.just("usage")),
)
_ENDINGS = st.sampled_from(["stop", "length", "content_filter", "tool_calls", "done", "eof", "error", "fail"])


def _op_chunk(op: tuple[Any, ...]) -> dict[str, Any]:
    if op[0] == "reasoning":
        return {"choices": [{"index": 0, "delta": {"reasoning_content": op[1]}}]}
    if op[0] == "content":
        return _text_chunk(op[1])
    if op[0] == "annotations":
        return {"choices": [{"index": 0, "delta": {"annotations": [{"type": "url_citation", "url": "https://a.b"}]}}]}
    if op[0] == "usage":
        return {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
    return _call_chunk(*op[1:])


@settings(max_examples=300, deadline=None)
@given(st.lists(_OPS, max_size=14), _ENDINGS)
def test_any_chunk_sequence_keeps_the_invariants(ops: list[tuple[Any, ...]], ending: str) -> None:
    stream = make(sealer=ReasoningSealer.random(), include=True)
    events = stream.start()
    for op in ops:
        events += stream.feed(_op_chunk(op))
    if ending in ("stop", "length", "content_filter", "tool_calls"):
        events += stream.feed(_finish(ending)) + stream.finish(saw_done=True)
    elif ending == "error":
        events += stream.feed({"error": {"code": "503", "message": "overloaded"}})
    elif ending == "fail":
        events += stream.fail(OpenAIError(504, "timed out", code="upstream_timeout"))
    else:
        events += stream.finish(saw_done=ending == "done")
    response = check_responses_stream(events)
    sdk_accepts(events)
    assert stream.done and stream.response is response
    # every piece of text reached the client as deltas ...
    assert streamed(events, "response.output_text.delta") == "".join(o[1] for o in ops if o[0] == "content")
    assert streamed(events, "response.reasoning_summary_text.delta") == "".join(o[1] for o in ops if o[0] == "reasoning")
    if response["status"] != "failed":  # ... and into the final output, unless the response failed mid-item
        messages = [i for i in response["output"] if i["type"] == "message"]
        assert "".join(m["content"][0]["text"] for m in messages) == "".join(o[1] for o in ops if o[0] == "content")
        reasoning = [i for i in response["output"] if i["type"] == "reasoning"]
        assert "".join(r["summary"][0]["text"] for r in reasoning) == "".join(o[1] for o in ops if o[0] == "reasoning")
    assert all(i["status"] != "in_progress" for i in response["output"])


def streamed(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


# -- the extractor and the checker themselves -------------------------------------------

PATCH = "*** Begin Patch\n+x = \"a\\\\b\"\t€ 😀\n*** End Patch"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([True, False]), st.lists(st.integers(min_value=1, max_value=120), max_size=25))
def test_input_extractor_survives_any_fragmentation(ascii_only: bool, cuts: list[int]) -> None:
    arguments = json.dumps({"input": PATCH}, ensure_ascii=ascii_only)
    points = sorted({c % len(arguments) for c in cuts} - {0})
    pieces = [arguments[a:b] for a, b in zip([0, *points], [*points, len(arguments)])]
    extractor = InputExtractor()
    out = "".join(extractor.feed(p) for p in pieces)
    assert extractor.started and out == PATCH == extractor.text


def test_input_extractor_replaces_lone_surrogates_and_declines_other_shapes() -> None:
    extractor = InputExtractor()
    assert extractor.feed('{"input": "a\\ud83d') == "a"
    assert extractor.feed('b"}') == "\ufffdb"
    for arguments in ('{"cmd": "x"}', '["input"]', '{"input": 5}', "not json"):
        other = InputExtractor()
        assert other.feed(arguments) == "" and not other.started


def _broken(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "sequence_number": i} for i, e in enumerate(events)]


def test_checker_rejects_seed_defects() -> None:
    good = drive(make(), load("compound_delta"))
    check_responses_stream(good)
    # defect 24: deltas carrying output_index 0 for an item at another index
    moved = [dict(e, output_index=0) if e["type"] == "response.output_text.delta" else e for e in good]
    # defect 25: a delta after its item's done
    index = types(good).index("reasoning_summary_text.delta")
    late = _broken(good[:index] + good[index + 1:index + 4] + [good[index]] + good[index + 4:])
    # defect 28: function calls missing from the terminal output
    terminal = dict(good[-1], response=dict(good[-1]["response"], output=good[-1]["response"]["output"][:2]))
    # duplicate terminal event, and a non-standard response.usage event
    twice = _broken(good + [good[-1]])
    usage_event = _broken(good[:-1] + [{"type": "response.usage", "usage": {}}] + good[-1:])
    # defect 26: a call never closed
    unclosed = _broken([e for e in good if not (e["type"] == "response.output_item.done"
                                               and e["item"]["type"] == "function_call")])
    for broken in (moved, late, good[:-1] + [terminal], twice, usage_event, unclosed, good[1:]):
        with pytest.raises(AssertionError):
            check_responses_stream(broken)


# -- helpers --------------------------------------------------------------------------------

def _text_chunk(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def _finish(reason: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


def _call_chunk(index: int | None, call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"arguments": arguments}}
    if index is not None:
        call["index"] = index
    if call_id is not None:
        call["id"] = call_id
        call["type"] = "function"
    if name is not None:
        call["function"]["name"] = name
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]}


# -- the echoed request (issue 19 item 8) -------------------------------------------------------

_FUNCTION_TOOL_KEYS = {"type", "name", "description", "parameters", "strict"}  # each required in a Response


def response_validates(snap: dict[str, Any]) -> None:
    """The Response validates as the openai SDK types it, and its function tools and tool
    choice carry every field Open Responses requires (its compliance suite checks them)."""
    Response.model_validate(snap)
    for tool in snap["tools"]:
        if tool.get("type") == "function":
            assert set(tool) >= _FUNCTION_TOOL_KEYS and isinstance(tool["strict"], bool), tool
    choice = snap["tool_choice"]
    if isinstance(choice, dict) and choice["type"] == "allowed_tools":
        assert choice["mode"] in ("auto", "required", "none") and isinstance(choice["tools"], list)
    if isinstance(choice, dict) and choice["type"] == "function":
        assert isinstance(choice["name"], str)


_FN = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.mark.parametrize("request_fields", [
    {"tools": [_FN]},
    {"tools": [{"type": "function", "name": "f"}, {"name": "g", "strict": False, "description": "d"}]},
    {"tools": [_FN], "tool_choice": {"type": "function", "name": "get_weather"}},
    {"tools": [_FN], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    {"tools": [_FN], "tool_choice": {"type": "allowed_tools", "tools": [{"type": "function", "name": "get_weather"}]}},
    {"tools": [_FN], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}}},
    {"text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
    {"text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}}},
    {"reasoning": {"effort": "high", "summary": "auto"}, "instructions": "be brief", "max_output_tokens": 50},
    {"tools": [{"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark",
                                                                    "definition": "start: x"}},
               {"type": "web_search", "external_web_access": False}, {"type": "local_shell"},
               {"type": "namespace", "name": "ns", "description": "d", "tools": [{"type": "function", "name": "g"}]}]},
])
def test_echoed_request_validates_as_a_response(request_fields) -> None:
    request = {"model": "gpt-5.5", "input": "hi", **request_fields}
    events = drive(make(request), [_text_chunk("ok"), _finish("stop"), "[DONE]"])
    for event in events:
        if "response" in event:
            response_validates(event["response"])


def test_function_tools_echo_strict_true_by_default_and_keep_the_clients_value() -> None:
    request = {"model": "gpt-5.5", "input": "hi",
               "tools": [_FN, {"type": "function", "name": "loose", "strict": False, "description": "d"}]}
    tools = make(request).start()[0]["response"]["tools"]
    assert tools == [{**_FN, "description": None, "strict": True},
                     {"type": "function", "name": "loose", "strict": False, "description": "d", "parameters": None}]
    assert request["tools"][0] == _FN  # the client's body is not modified


# -- max_tool_calls and parallel_tool_calls false (issue 19 item 14) -----------------------------

THREE_CALLS = [
    _call_chunk(0, "call_a", "exec_command", '{"cmd":'),
    _call_chunk(1, "call_b", "shell", '{"command": ["ls"]}'),
    _call_chunk(2, "call_c", "apply_patch", '{"input": "x"}'),
    _call_chunk(0, None, None, ' "ls"}'),
    _finish("tool_calls"),
    "[DONE]",
]


@pytest.mark.parametrize(("fields", "kept"), [
    ({}, ["call_a", "call_b", "call_c"]),
    ({"max_tool_calls": 2}, ["call_a", "call_b"]),
    ({"max_tool_calls": 0}, []),
    ({"parallel_tool_calls": False}, ["call_a"]),
    ({"parallel_tool_calls": False, "max_tool_calls": 5}, ["call_a"]),
    ({"parallel_tool_calls": True, "max_tool_calls": 1}, ["call_a"]),
])
def test_a_response_holds_at_most_max_tool_calls_the_first_ones(fields, kept) -> None:
    events = drive(make({"model": "gpt-5.5", "input": "hi", **fields}), THREE_CALLS)
    response = check_responses_stream(events)
    assert [item["call_id"] for item in response["output"]] == kept
    announced = [e["item"]["call_id"] for e in events if e["type"] == "response.output_item.added"]
    assert announced == kept  # a dropped call is never announced
    assert response["status"] == "completed"
    if "call_a" in kept:
        assert response["output"][0]["arguments"] == '{"cmd": "ls"}'
