"""Golden tests for the Responses -> MiMo chat request translator."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimo_asgi._seal import COMPACTION, ReasoningSealer
from mimo_asgi.translate import _mimo
from mimo_asgi.translate._content import Ctx, chat_parts, output_text
from mimo_asgi.translate._items import COMPACTED, COMPACTED_ELSEWHERE, NO_OUTPUT, PLACEHOLDER_REASONING, resolve_references
from mimo_asgi.translate._tooldefs import ToolNames
from mimo_asgi.translate._tools import ToolSpec
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_request import (
    MUST_CALL_ANY,
    ResponsesTranslation,
    chat_request_from_responses,
)

SEALER = ReasoningSealer("unit-test-key")


@pytest.fixture(autouse=True)
def _fresh_process_warnings():
    """Dropped fields are said once per process; each test starts as a fresh process would."""
    _mimo.WARNED_ONCE.clear()
    yield
    _mimo.WARNED_ONCE.clear()


OTHER_SEALER = ReasoningSealer("some-other-key")
FIXTURES = Path("/work/shared/fixtures")
SECRET = "SECRET-PROMPT-TEXT"
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MIMO_FIELDS = {
    "model", "messages", "stream", "stream_options", "max_completion_tokens", "temperature", "top_p", "stop",
    "frequency_penalty", "presence_penalty", "response_format", "thinking", "tools", "tool_choice",
    "parallel_tool_calls", "reasoning_effort",
}
EXEC = {"type": "function", "name": "exec_command", "description": "Run a command.", "strict": False,
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
               "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}


# ---------------------------------------------------------------- MiMo rule checker

def check_mimo_rules(body: dict[str, Any]) -> None:
    """MiMo's request rules (docs/mimo.md: request fields, message rules, tools) that every translated body must satisfy."""
    assert set(body) <= MIMO_FIELDS, set(body) - MIMO_FIELDS
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["thinking"]["type"] in ("enabled", "disabled")
    thinking = body["thinking"]["type"] == "enabled"
    if "reasoning_effort" in body:
        assert thinking and body["reasoning_effort"] in ("low", "medium", "high")
    messages = body["messages"]
    assert messages
    pending: list[str] = []  # call ids of the last assistant turn still waiting for their tool message
    for i, m in enumerate(messages):
        role = m["role"]
        assert role in ("system", "user", "assistant", "tool"), m
        assert m.get("content", "") is not None, f"null content at {i}"
        if role == "tool":
            assert isinstance(m["content"], str), "tool content must be a string"
            assert pending and m["tool_call_id"] == pending[0], f"tool message {i} not directly after its call"
            pending.pop(0)
            continue
        assert not pending, f"calls {pending} unanswered before message {i}"
        content = m.get("content")
        if isinstance(content, list):
            assert role == "user", "parts only in user messages"
            for part in content:
                assert part["type"] in ("text", "image_url", "input_audio")
                if part["type"] == "text":
                    assert isinstance(part["text"], str) and part["text"]
            if any(p["type"] != "text" for p in content):
                assert any(p["type"] == "text" and p["text"] for p in content)
        elif role != "assistant" or "tool_calls" not in m:
            assert isinstance(content, str) and content, f"message {i} needs text"
        if role == "assistant" and m.get("tool_calls"):
            if thinking:
                assert m.get("reasoning_content"), f"assistant turn {i} lacks reasoning_content"
            for call in m["tool_calls"]:
                assert call["type"] == "function" and call["id"]
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
                pending.append(call["id"])
    assert not pending, f"calls {pending} never answered"
    if "tools" in body:
        assert body["tools"], "never an empty tools list"
        names = [t["function"]["name"] for t in body["tools"] if t["type"] == "function"]
        assert len(names) == len(set(names)), "duplicate tool names"
        for t in body["tools"]:
            assert t["type"] in ("function", "web_search")
            if t["type"] == "function":
                assert NAME_RE.match(t["function"]["name"])
                assert "strict" not in t["function"] and "strict" not in t
                assert isinstance(t["function"]["parameters"], dict)
    else:
        assert "tool_choice" not in body and "parallel_tool_calls" not in body
    json.dumps(body)


def translate(body: dict[str, Any], model: str = "mimo-v2.5-pro", **kw: Any) -> ResponsesTranslation:
    t = chat_request_from_responses(body, upstream_model=model, sealer=SEALER, **kw)
    check_mimo_rules(t.body)
    for call in (c for m in t.body["messages"] for c in m.get("tool_calls", ())):
        assert call["function"]["name"] in t.tool_map
    for w in t.warnings:
        assert SECRET not in w
    return t


def messages_of(body: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    return translate(body, **kw).body["messages"]


def fails(body: Any, param: str | None, **kw: Any) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        chat_request_from_responses(body, upstream_model=kw.pop("model", "mimo-v2.5-pro"), sealer=SEALER, **kw)
    err = info.value
    assert err.status == 400
    assert err.param == param
    shaped = err.body()
    assert set(shaped) == {"error"} and set(shaped["error"]) == {"message", "type", "param", "code"}
    assert shaped["error"]["type"] == "invalid_request_error" and shaped["error"]["message"]
    return err


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


# ---------------------------------------------------------------- basic shape

def test_string_input_gives_the_exact_minimal_body():
    t = translate({"model": "gpt-5.5", "input": "hello"})
    assert t.body == {
        "model": "mimo-v2.5-pro",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "thinking": {"type": "enabled"},
    }
    assert t.tool_map == {} and t.web_search is None and t.include_encrypted is False and t.warnings == []


def test_non_stream_client_still_streams_upstream_and_thinking_default_follows_model():
    t = translate({"input": "hi", "stream": False}, model="mimo-v2-flash")
    assert t.body["stream"] is True
    assert t.body["thinking"] == {"type": "disabled"}


def test_instructions_system_and_developer_messages_become_system_in_order():
    body = {
        "instructions": "Be brief.",
        "input": [
            {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "part one"}, {"type": "input_text", "text": "part two"}]},
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "question"},
            {"type": "message", "role": "developer", "content": "late developer note"},
        ],
    }
    assert messages_of(body) == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "part one\n\npart two"},
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "question"},
        {"role": "system", "content": "late developer note"},
    ]


def test_instructions_array_form_is_its_text():
    body = {"instructions": [{"type": "message", "role": "developer",
                              "content": [{"type": "input_text", "text": "A"}, {"type": "input_text", "text": "B"}]},
                             "C"],
            "input": "q"}
    assert messages_of(body)[0] == {"role": "system", "content": "A\n\nB\n\nC"}


def test_easy_messages_and_assistant_multipart_text_are_kept_whole():
    body = {"input": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "first"},
                                          {"type": "output_text", "text": ""},
                                          {"type": "refusal", "refusal": "cannot do that"}]},
        {"role": "assistant", "content": "second message"},
        {"role": "user", "content": "ok"},
    ]}
    assert messages_of(body) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "first\n\ncannot do that\n\nsecond message"},
        {"role": "user", "content": "ok"},
    ]


# ---------------------------------------------------------------- images and files

IMAGE = "data:image/png;base64,iVBORw0KGgo="


def test_images_reach_vision_models_as_image_url_parts_with_a_text_part():
    body = {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": IMAGE, "detail": "high"}]}]}
    assert messages_of(body, model="mimo-v2.5") == [{"role": "user", "content": [
        {"type": "text", "text": " "},
        {"type": "image_url", "image_url": {"url": IMAGE, "detail": "high"}},
    ]}]


def test_file_id_images_become_markers():
    body = {"input": [{"role": "user", "content": [
        {"type": "input_text", "text": "look"},
        {"type": "input_image", "image_url": IMAGE},
        {"type": "input_image", "file_id": "file-abc"},
    ]}]}
    vision = messages_of(body, model="mimo-v2.5")[0]["content"]
    assert vision == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
        {"type": "text", "text": "[image omitted: file file-abc cannot be fetched by this gateway]"},
    ]


@pytest.mark.parametrize("model", ["mimo-v2.6-flash", "mimo-v3-omni", "mimo-v2.5"])
def test_a_users_image_reaches_any_model_not_known_to_be_text_only(model):
    body = {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": IMAGE}]}]}
    assert messages_of(body, model=model)[0]["content"][1] == {"type": "image_url", "image_url": {"url": IMAGE}}


@pytest.mark.parametrize("model", ["mimo-v2.5-pro", "mimo-v2-pro", "mimo-v2-flash", "mimo-v2.5-pro-ultraspeed"])
def test_a_users_image_for_a_text_only_model_is_a_400_naming_the_model(model):
    body = {"model": "gpt-5.5", "input": [user("q"), {"role": "user", "content": [
        {"type": "input_text", "text": "look"}, {"type": "input_image", "image_url": IMAGE}]}]}
    err = fails(body, "input[1].content[1]", model=model)
    assert "'gpt-5.5'" in err.message and model in err.message and "image" in err.message
    assert err.code == "image_input_not_supported"


AUDIO = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}


def _ctx(model: str) -> Ctx:
    return Ctx(model, SEALER, ToolNames(), [], asked="gpt-5.5")


@pytest.mark.parametrize("model", ["mimo-v2.5", "mimo-v2.6-flash"])
def test_a_users_audio_becomes_mimos_input_audio_part(model):
    parts = chat_parts([{"type": "input_text", "text": "hear"}, {**AUDIO, "extra": 1}], "user", "input[0].content",
                       _ctx(model))
    assert parts == [{"type": "text", "text": "hear"}, AUDIO]


def test_audio_outside_user_messages_and_in_tool_outputs_is_a_marker():
    assert chat_parts([AUDIO], "system", "instructions", _ctx("mimo-v2.5")) == [
        {"type": "text", "text": "[audio omitted: audio is only passed in user messages]"}]
    assert output_text([AUDIO], "input[1].output", _ctx("mimo-v2.5")) == (
        "[audio omitted: audio is only passed in user messages]", [])


def test_a_users_audio_for_a_text_only_model_is_a_400_naming_the_model():
    body = {"model": "gpt-5.5", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hear"}, AUDIO]}]}
    err = fails(body, "input[0].content[1]")
    assert err.code == "audio_input_not_supported" and "'gpt-5.5'" in err.message and "mimo-v2.5-pro" in err.message
    fails({"input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
          "input[0].content[0].input_audio", model="mimo-v2.5")


# _items.py keeps a user message's parts only when one is an image; it must keep them for any
# part that is not text (`any(p["type"] != "text" for p in parts)` in `_message`).
def test_a_users_audio_reaches_mimo():
    body = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hear"}, AUDIO]},
                      {"role": "user", "content": [AUDIO]}]}
    assert messages_of(body, model="mimo-v2.5") == [
        {"role": "user", "content": [{"type": "text", "text": "hear"}, AUDIO]},
        {"role": "user", "content": [{"type": "text", "text": " "}, AUDIO]}]


def test_input_files_become_text_when_readable_else_a_marker_naming_the_file():
    text_b64 = base64.b64encode(b"col1,col2\n1,2\n").decode()
    body = {"input": [{"role": "user", "content": [
        {"type": "input_file", "filename": "data.csv", "file_data": f"data:text/csv;base64,{text_b64}"},
        {"type": "input_file", "filename": "notes.txt", "file_data": base64.b64encode(b"plain").decode()},
        {"type": "input_file", "filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQK"},
        {"type": "input_file", "file_url": "https://example.com/x.docx"},
    ]}]}
    assert messages_of(body)[0]["content"] == (
        "[file: data.csv]\ncol1,col2\n1,2\n\n\n[file: notes.txt]\nplain\n\n"
        "[file omitted: paper.pdf cannot be read by this model]\n\n"
        "[file omitted: https://example.com/x.docx cannot be read by this model]")


# ---------------------------------------------------------------- tool-call history

def _history(sealed: str, call: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {
        "tools": [EXEC, APPLY_PATCH],
        "input": [
            user("fix it"),
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "summary"}],
             "encrypted_content": sealed},
            call,
            output,
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": SEALER.seal("All done.")},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Fixed."}]},
            user("thanks"),
        ],
    }


def test_two_turn_function_call_history_is_one_assistant_turn_then_its_tool_message():
    reasoning = "I need to run ls first.\nThen decide."
    body = _history(
        SEALER.seal(reasoning),
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command",
         "arguments": "{\"cmd\": \"ls\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt\nb.txt"},
    )
    assert messages_of(body) == [
        {"role": "user", "content": "fix it"},
        {"role": "assistant", "reasoning_content": reasoning, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": "{\"cmd\": \"ls\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt\nb.txt"},
        {"role": "assistant", "content": "Fixed.", "reasoning_content": "All done."},
        {"role": "user", "content": "thanks"},
    ]


def test_custom_tool_call_history_replays_as_a_function_call_with_input_argument():
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    body = _history(
        SEALER.seal("patch it"),
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_p", "name": "apply_patch", "input": patch},
        {"type": "custom_tool_call_output", "call_id": "call_p", "output": "Success. Updated: a.txt"},
    )
    t = translate(body)
    messages = t.body["messages"]
    assert messages[1] == {"role": "assistant", "reasoning_content": "patch it", "tool_calls": [
        {"id": "call_p", "type": "function",
         "function": {"name": "apply_patch", "arguments": json.dumps({"input": patch}, separators=(",", ":"))}},
    ]}
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"input": patch}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_p", "content": "Success. Updated: a.txt"}
    assert t.tool_map["apply_patch"] == ToolSpec("custom", "apply_patch", None)


def test_several_reasoning_items_before_one_turn_are_concatenated_in_order():
    body = {"input": [
        user("go"),
        {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal("part A. ")},
        {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal("part B.")},
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
    ]}
    messages = messages_of(body)
    assert messages[1]["reasoning_content"] == "part A. part B."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[2:] == [{"role": "tool", "tool_call_id": "c1", "content": "one"},
                            {"role": "tool", "tool_call_id": "c2", "content": "two"}]


def test_foreign_and_tampered_blobs_never_reach_the_body_and_no_summary_stands_in():
    sealed = SEALER.seal("genuine reasoning")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    for blob in ("gAAAAABoFOREIGNopenaiBLOB==", tampered, OTHER_SEALER.seal("other gateway"), "mimo1:%%%"):
        body = {"input": [
            user("q"),
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "SUMMARY-TEXT"}], "encrypted_content": blob},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ]}
        t = translate(body)
        raw = json.dumps(t.body)
        assert blob not in raw and "SUMMARY-TEXT" not in raw and "other gateway" not in raw
        assert t.body["messages"][1]["reasoning_content"] == PLACEHOLDER_REASONING
        assert any("encrypted_content" in w for w in t.warnings)


def test_summary_is_the_fallback_only_when_there_is_no_blob():
    body = {"input": [
        user("q"),
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought about it"}]},
        {"type": "message", "role": "assistant", "content": "answer"},
    ]}
    assert messages_of(body)[1] == {"role": "assistant", "content": "answer", "reasoning_content": "thought about it"}


def test_placeholder_reasoning_only_when_thinking_is_on():
    body = {"input": [
        user("q"),
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]}
    assert messages_of(body)[1]["reasoning_content"] == PLACEHOLDER_REASONING
    off = translate({**body, "reasoning": {"effort": "none"}}).body
    assert off["thinking"] == {"type": "disabled"}
    assert "reasoning_content" not in off["messages"][1]


def test_output_after_another_message_moves_back_next_to_its_call():
    body = {"input": [
        user("q"),
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        user("interjection"),
        {"type": "function_call_output", "call_id": "c1", "output": "late output"},
    ]}
    assert [m["role"] for m in messages_of(body)] == ["user", "assistant", "tool", "user"]
    assert messages_of(body)[2] == {"role": "tool", "tool_call_id": "c1", "content": "late output"}


def test_orphan_output_is_kept_as_user_text_and_missing_output_is_marked():
    body = {"input": [
        user("q"),
        {"type": "function_call_output", "call_id": "gone", "output": "orphaned result"},
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        user("next"),
    ]}
    messages = messages_of(body)
    assert messages[1] == {"role": "user", "content": "Output of tool call gone:\norphaned result"}
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": NO_OUTPUT}
    assert messages[4] == {"role": "user", "content": "next"}


def test_real_outputs_are_never_replaced_by_the_missing_output_note():
    body = {"input": [
        user("q"),
        {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "exec_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": ""},
        user("later"),
        {"type": "function_call_output", "call_id": "c2", "output": "real two"},
    ]}
    messages = messages_of(body)
    assert messages[2:4] == [{"role": "tool", "tool_call_id": "c1", "content": "(empty output)"},
                             {"role": "tool", "tool_call_id": "c2", "content": "real two"}]
    assert NO_OUTPUT not in json.dumps(messages)


@pytest.mark.parametrize("arguments", ["", "{\"cmd\": \"ls\"", "not json", "[1, 2]", None])
def test_historical_arguments_that_are_not_a_json_object_become_empty_object(arguments):
    body = {"input": [user("q"), {"type": "function_call", "call_id": "c1", "name": "exec_command",
                                  "arguments": arguments}]}
    assert messages_of(body)[1]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_tool_output_parts_are_flattened_to_a_string_and_images_follow_for_vision_models():
    output = [{"type": "input_text", "text": "screenshot taken"}, {"type": "input_image", "image_url": IMAGE}]
    body = {"input": [user("q"),
                      {"type": "function_call", "call_id": "c1", "name": "view_image", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "c1", "output": output}]}
    text_only = messages_of(body)
    assert text_only[2] == {"role": "tool", "tool_call_id": "c1",
                            "content": "screenshot taken\n[image omitted: mimo-v2.5-pro does not accept images]"}
    vision = messages_of(body, model="mimo-v2.5")
    assert vision[2] == {"role": "tool", "tool_call_id": "c1",
                         "content": "screenshot taken\n[image: shown in the next message]"}
    assert vision[3] == {"role": "user", "content": [
        {"type": "text", "text": "Images returned by the tool calls above:"},
        {"type": "image_url", "image_url": {"url": IMAGE}}]}


def test_local_shell_history_and_tool():
    body = {"tools": [{"type": "local_shell"}], "input": [
        user("q"),
        {"type": "local_shell_call", "id": "lsh_1", "call_id": "call_sh", "status": "completed",
         "action": {"type": "exec", "command": ["bash", "-lc", "ls"], "working_directory": "/tmp",
                    "timeout_ms": 1000, "env": {"A": "1"}}},
        {"type": "local_shell_call_output", "id": "call_sh", "output": "file"},
    ]}
    t = translate(body)
    assert t.body["tools"] == [{"type": "function", "function": {
        "name": "shell", "description": "Runs a command on the user's machine and returns its output.",
        "parameters": {"type": "object", "properties": {
            "command": {"type": "array", "items": {"type": "string"},
                        "description": "The command and its arguments, e.g. [\"bash\", \"-lc\", \"ls -la\"]."},
            "workdir": {"type": "string", "description": "Working directory to run the command in."},
            "timeout_ms": {"type": "number", "description": "Time limit for the command in milliseconds."}},
            "required": ["command"]}}}]
    call = t.body["messages"][1]["tool_calls"][0]
    assert call["id"] == "call_sh" and call["function"]["name"] == "shell"
    assert json.loads(call["function"]["arguments"]) == {"command": ["bash", "-lc", "ls"], "workdir": "/tmp",
                                                         "timeout_ms": 1000}
    assert t.body["messages"][2] == {"role": "tool", "tool_call_id": "call_sh", "content": "file"}
    assert t.tool_map["shell"] == ToolSpec("local_shell", "local_shell")


def test_tool_search_history_loads_the_found_tools():
    found = [{"type": "namespace", "name": "calendar", "description": "Calendar tools",
              "tools": [{"type": "function", "name": "create_event", "description": "Create an event.",
                         "parameters": {"type": "object", "properties": {"title": {"type": "string"}}}}]}]
    body = {"tools": [{"type": "tool_search", "execution": "client", "description": "Find tools."}], "input": [
        user("book a meeting"),
        {"type": "tool_search_call", "call_id": "ts_1", "execution": "client", "status": "completed",
         "arguments": {"query": "calendar", "limit": 2}},
        {"type": "tool_search_output", "call_id": "ts_1", "execution": "client", "status": "completed",
         "tools": found},
    ]}
    t = translate(body)
    messages = t.body["messages"]
    assert messages[1]["tool_calls"] == [{"id": "ts_1", "type": "function", "function": {
        "name": "tool_search", "arguments": "{\"query\":\"calendar\",\"limit\":2}"}}]
    assert messages[2] == {"role": "tool", "tool_call_id": "ts_1",
                           "content": "The following tools are now available to call: calendar__create_event."}
    assert [x["function"]["name"] for x in t.body["tools"]] == ["tool_search", "calendar__create_event"]
    assert t.body["tools"][0]["function"]["parameters"]["required"] == ["query"]
    assert t.tool_map["tool_search"] == ToolSpec("tool_search", "tool_search")
    assert t.tool_map["calendar__create_event"] == ToolSpec("function", "create_event", "calendar")


def test_web_search_call_is_an_assistant_note_not_a_tool_message():
    body = {"input": [
        user("news?"),
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "latest news"}},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Here they are."}]},
    ]}
    assert messages_of(body) == [
        {"role": "user", "content": "news?"},
        {"role": "assistant", "content": "(searched the web for: latest news)\n\nHere they are."},
    ]


def test_an_item_reference_that_reaches_the_translator_is_a_400_naming_it():
    """The exchange resolves references before translation; the translator never guesses."""
    body = {"input": [user("q"), {"type": "item_reference", "id": "fc_123"},
                      {"type": "function_call_output", "call_id": "call_123", "output": "result"}]}
    with pytest.raises(OpenAIError) as err:
        messages_of(body)
    assert (err.value.status, err.value.param) == (400, "input[1]")


def test_item_references_resolve_to_the_items_before_them():
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"}
    said = {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}
    items = [user("q"), call, said, {"type": "item_reference", "id": "fc_1"}, {"type": "item_reference", "id": "msg_1"}]
    assert resolve_references(items) == [user("q"), call, said, call, said]
    with pytest.raises(OpenAIError) as err:
        resolve_references([{"type": "item_reference", "id": "msg_1"}, said])  # only what comes before
    assert (err.value.status, err.value.code, err.value.param) == (404, "item_not_found", "input[0]")


def test_compaction_with_our_blob_carries_the_summary_and_a_foreign_one_leaves_a_note():
    ours = {"type": "compaction", "encrypted_content": SEALER.for_purpose(COMPACTION).seal("We fixed the parser.")}
    foreign = {"type": "compaction_summary", "encrypted_content": "gAAAAABforeign"}
    t = translate({"input": [foreign, ours, user("continue")]})
    assert t.body["messages"] == [
        {"role": "system", "content": COMPACTED_ELSEWHERE},
        {"role": "system", "content": COMPACTED + "We fixed the parser."},
        {"role": "user", "content": "continue"},
    ]
    assert "gAAAAABforeign" not in json.dumps(t.body)
    assert [w for w in t.warnings if "compaction" in w] == [
        "dropped a compaction item whose encrypted_content was not issued by this gateway"]


# ---------------------------------------------------------------- tools

def test_function_tool_golden():
    t = translate({"input": "q", "tools": [EXEC, {"type": "function", "name": "noargs"}]})
    assert t.body["tools"] == [
        {"type": "function", "function": {"name": "exec_command", "description": "Run a command.",
                                          "parameters": EXEC["parameters"]}},
        {"type": "function", "function": {"name": "noargs", "parameters": {"type": "object", "properties": {}}}},
    ]
    assert t.tool_map == {"exec_command": ToolSpec("function", "exec_command"),
                          "noargs": ToolSpec("function", "noargs")}


def test_custom_tool_golden_carries_the_grammar():
    t = translate({"input": "q", "tools": [APPLY_PATCH, {"type": "custom", "name": "free"}]})
    assert t.body["tools"] == [
        {"type": "function", "function": {
            "name": "apply_patch",
            "description": "Edit files.\n\nThe `input` argument must follow this lark grammar:\n"
                           "start: begin_patch hunk+ end_patch",
            "parameters": {"type": "object", "properties": {"input": {
                "type": "string",
                "description": "The raw freeform input for this tool, written in the lark grammar given in the "
                               "tool description (not JSON)."}},
                "required": ["input"]}}},
        {"type": "function", "function": {
            "name": "free",
            "parameters": {"type": "object", "properties": {"input": {
                "type": "string", "description": "The raw freeform input for this tool as plain text (not JSON)."}},
                "required": ["input"]}}},
    ]
    assert t.tool_map["apply_patch"] == ToolSpec("custom", "apply_patch")


def test_long_grammar_is_truncated():
    tool = {**APPLY_PATCH, "format": {"type": "grammar", "syntax": "lark", "definition": "x" * 10000}}
    description = translate({"input": "q", "tools": [tool]}).body["tools"][0]["function"]["description"]
    assert len(description) < 4200 and description.endswith("(grammar truncated)")


def test_namespace_tools_are_flattened_mapped_and_long_names_hash_truncated():
    long_ns = "mcp__" + "very_long_server_name_" * 3
    body = {"input": "q", "tools": [
        {"type": "namespace", "name": "multi_agent_v1", "description": "Agents.",
         "tools": [{"type": "function", "name": "spawn_agent", "parameters": {"type": "object", "properties": {}}},
                   {"type": "custom", "name": "raw"}]},
        {"type": "namespace", "name": long_ns, "tools": [{"type": "function", "name": "tool.with.dots"},
                                                         {"type": "function", "name": "tool_with_dots"}]},
    ]}
    t = translate(body)
    names = [x["function"]["name"] for x in t.body["tools"]]
    assert names[:2] == ["multi_agent_v1__spawn_agent", "multi_agent_v1__raw"]
    assert all(len(n) <= 64 and NAME_RE.match(n) for n in names) and len(set(names)) == 4
    assert t.tool_map["multi_agent_v1__spawn_agent"] == ToolSpec("function", "spawn_agent", "multi_agent_v1")
    assert t.tool_map["multi_agent_v1__raw"] == ToolSpec("custom", "raw", "multi_agent_v1")
    assert {t.tool_map[n] for n in names[2:]} == {ToolSpec("function", "tool.with.dots", long_ns),
                                                  ToolSpec("function", "tool_with_dots", long_ns)}
    again = translate(body)  # the encoding is a pure function of the names
    assert [x["function"]["name"] for x in again.body["tools"]] == names


def test_namespaced_call_history_uses_the_flattened_name():
    body = {"tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}],
            "input": [user("q"), {"type": "function_call", "call_id": "c", "name": "f", "namespace": "ns",
                                  "arguments": "{}"}]}
    assert messages_of(body)[1]["tool_calls"][0]["function"]["name"] == "ns__f"


def test_duplicate_names_first_wins_and_builtins_never_collide_with_client_functions():
    body = {"input": "q", "tools": [
        {"type": "local_shell"},
        {"type": "function", "name": "shell", "description": "client's own shell"},
        {"type": "function", "name": "shell", "description": "duplicate"},
        {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "shell"}]},
    ]}
    t = translate(body)
    tools = {x["function"]["name"]: x["function"].get("description") for x in t.body["tools"]}
    assert tools["shell"] == "client's own shell"
    assert t.tool_map["shell"] == ToolSpec("function", "shell")
    assert t.tool_map["local_shell"] == ToolSpec("local_shell", "local_shell")
    assert t.tool_map["ns__shell"] == ToolSpec("function", "shell", "ns")
    assert len(t.body["tools"]) == 3
    assert any("duplicate" in w for w in t.warnings)


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview", "web_search_2025_08_26",
                                  "web_search_preview_2025_03_11"])
def test_web_search_variants_become_native_search(kind):
    tool = {"type": kind, "search_context_size": "high", "external_web_access": False,
            "user_location": {"type": "approximate", "country": "GB", "city": "London", "timezone": "Europe/London"}}
    t = translate({"input": "q", "tools": [tool, {"type": "web_search"}]})
    assert t.body["tools"] == [{"type": "web_search",
                                "user_location": {"type": "approximate", "country": "GB", "city": "London"}}]
    assert t.web_search is None


def test_web_search_is_set_aside_when_native_search_is_not_allowed():
    tool = {"type": "web_search", "external_web_access": False}
    t = translate({"input": "q", "tools": [EXEC, tool]}, native_web_search=False)
    assert [x["type"] for x in t.body["tools"]] == ["function"]
    assert t.web_search == tool
    only = translate({"input": "q", "tools": [tool], "tool_choice": "auto"}, native_web_search=False)
    assert "tools" not in only.body and "tool_choice" not in only.body and only.web_search == tool


@pytest.mark.parametrize("kind", ["code_interpreter", "file_search", "image_generation", "computer_use",
                                  "computer_use_preview", "mcp", "something_new"])
def test_hosted_tools_mimo_cannot_run_are_rejected_or_dropped(kind):
    body = {"input": "q", "tools": [EXEC, {"type": kind, "server_label": "x"}]}
    err = fails(body, "tools[1]")
    assert kind in err.message
    t = translate(body, drop_unsupported_tools=True)
    assert [x["function"]["name"] for x in t.body["tools"]] == ["exec_command"]
    assert t.warnings == [f"dropped tool tools[1] of type '{kind}': MiMo cannot run it"]


def test_unsupported_tool_inside_a_namespace_names_its_position():
    fails({"input": "q", "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "mcp"}]}]},
          "tools[0]")


# ---------------------------------------------------------------- tool_choice

TOOLS = [EXEC, APPLY_PATCH, {"type": "web_search"}]


def test_tool_choice_auto_and_absent():
    assert translate({"input": "q", "tools": TOOLS, "tool_choice": "auto"}).body["tool_choice"] == "auto"
    assert translate({"input": "q", "tools": TOOLS}).body["tool_choice"] == "auto"  # explicit, as on the Chat path


def test_tool_choice_none_removes_every_tool():
    t = translate({"input": "q", "tools": TOOLS, "tool_choice": "none", "parallel_tool_calls": True},
                  native_web_search=False)
    assert "tools" not in t.body and "tool_choice" not in t.body and "parallel_tool_calls" not in t.body
    assert t.web_search is None


def test_tool_choice_required_keeps_tools_sends_auto_and_a_must_call_line():
    t = translate({"instructions": "sys", "input": "q", "tools": TOOLS, "tool_choice": "required"})
    assert t.body["tool_choice"] == "auto" and len(t.body["tools"]) == 3
    assert t.body["messages"] == [{"role": "system", "content": "sys"},
                                  {"role": "system", "content": MUST_CALL_ANY},
                                  {"role": "user", "content": "q"}]


@pytest.mark.parametrize("choice", [{"type": "function", "name": "exec_command"},
                                    {"type": "custom", "name": "apply_patch"}])
def test_tool_choice_named_keeps_only_that_tool(choice):
    t = translate({"input": "q", "tools": TOOLS, "tool_choice": choice}, native_web_search=False)
    assert [x["function"]["name"] for x in t.body["tools"]] == [choice["name"]]
    assert t.body["tool_choice"] == "auto"
    assert t.body["messages"][0] == {"role": "system", "content": (
        f"You must call the `{choice['name']}` tool in your next response; do not answer without calling it.")}
    assert t.web_search is None


def test_tool_choice_naming_an_absent_tool_is_rejected():
    fails({"input": "q", "tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}}, "tool_choice")


def test_tool_choice_allowed_tools():
    choice = {"type": "allowed_tools", "mode": "required",
              "tools": [{"type": "custom", "name": "apply_patch"}, {"type": "web_search"}]}
    t = translate({"input": "q", "tools": TOOLS, "tool_choice": choice})
    assert [x.get("function", {}).get("name", x["type"]) for x in t.body["tools"]] == ["apply_patch", "web_search"]
    assert t.body["tool_choice"] == "auto" and t.body["messages"][0]["content"] == MUST_CALL_ANY
    auto = translate({"input": "q", "tools": TOOLS, "tool_choice": {**choice, "mode": "auto"}})
    assert auto.body["messages"] == [{"role": "user", "content": "q"}]


def test_hosted_tool_choice_narrows_to_native_search_and_forces_it():
    t = translate({"input": "q", "tools": TOOLS, "tool_choice": {"type": "web_search"}})
    assert t.body["tool_choice"] == "auto"
    assert t.body["tools"] == [{"type": "web_search", "force_search": True}]
    assert t.body["messages"] == [{"role": "user", "content": "q"}]


# ---------------------------------------------------------------- parameters

@pytest.mark.parametrize(("effort", "thinking", "sent"), [
    ("none", "disabled", None), ("minimal", "enabled", "low"), ("low", "enabled", "low"),
    ("medium", "enabled", "medium"), ("high", "enabled", "high"), ("xhigh", "enabled", "high"),
    ("max", "enabled", "high"), (None, "enabled", None),
])
def test_reasoning_effort_mapping(effort, thinking, sent):
    body = translate({"input": "q", "reasoning": {"effort": effort, "summary": "auto"}}).body
    assert body["thinking"] == {"type": thinking}
    assert body.get("reasoning_effort") == sent


def test_explicit_effort_turns_thinking_on_for_models_that_default_off():
    body = translate({"input": "q", "reasoning": {"effort": "low"}}, model="mimo-v2-flash").body
    assert body["thinking"] == {"type": "enabled"} and body["reasoning_effort"] == "low"


def test_sampling_is_dropped_only_when_mimo_fixes_it():
    body = {"input": "q", "temperature": 0.2, "top_p": 0.5, "max_output_tokens": 300, "stop": ["END"],
            "frequency_penalty": 0.1, "presence_penalty": -0.1}
    on = translate(body)
    assert "temperature" not in on.body and "top_p" not in on.body
    assert on.body["max_completion_tokens"] == 300 and on.body["frequency_penalty"] == 0.1
    assert on.body["stop"] == ["END"]
    assert [w for w in on.warnings if w.split()[0] in ("temperature", "top_p")] == [
        "temperature is not sent to MiMo: while thinking, MiMo fixes it for mimo-v2.5-pro (temperature 1.0, "
        "top_p 0.95) (said once per process)",
        "top_p is not sent to MiMo: while thinking, MiMo fixes it for mimo-v2.5-pro (temperature 1.0, "
        "top_p 0.95) (said once per process)"]
    assert translate(body).warnings == []  # said once per process
    off = translate({**body, "reasoning": {"effort": "none"}}).body
    assert (off["temperature"], off["top_p"], off["presence_penalty"]) == (0.2, 0.5, -0.1)
    flash = translate(body, model="mimo-v2-flash").body
    assert flash["temperature"] == 0.2


def test_text_format_json_object_and_json_schema():
    obj = translate({"input": "q", "text": {"format": {"type": "json_object"}, "verbosity": "low"}}).body
    assert obj["response_format"] == {"type": "json_object"} and len(obj["messages"]) == 1
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = translate({"input": "q", "text": {"format": {"type": "json_schema", "name": "thing", "strict": True,
                                                        "schema": schema}}}).body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content":
        "Respond with only a JSON object that conforms to the JSON Schema \"thing\":\n"
        + json.dumps(schema, separators=(",", ":"))}


def test_fields_without_a_mimo_place_are_accepted_and_not_sent():
    body = {"input": "q", "user": "u", "metadata": {"a": "b"}, "store": True,
            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "safety_identifier": "s",
            "service_tier": "auto", "truncation": "auto", "text": {"verbosity": "low"}, "client_metadata": {},
            "max_tool_calls": 3, "top_logprobs": 0, "stream_options": {"include_obfuscation": False},
            "previous_response_id": None, "background": False, "conversation": None}
    t = translate(body)
    assert set(t.body) == {"model", "messages", "stream", "stream_options", "thinking"}
    assert t.include_encrypted is True
    assert [w.split()[0] for w in t.warnings] == ["truncation", "text.verbosity"]  # never silently
    assert translate(body).warnings == []  # once per process


def test_unknown_top_level_fields_only_warn():
    t = translate({"input": "q", "some_future_field": SECRET})
    assert t.warnings == ["ignored unknown field 'some_future_field'"]


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize(("field", "value"), [("previous_response_id", "resp_1"), ("background", True),
                                              ("conversation", "conv_1"), ("conversation", {"id": "conv_1"})])
def test_stateful_features_are_rejected_naming_the_field(field, value):
    err = fails({"input": "q", field: value}, field)
    assert "not supported for MiMo-routed requests" in err.message


@pytest.mark.parametrize(("body", "param"), [
    ({}, "input"),
    ({"input": 5}, "input"),
    ({"input": []}, "input"),
    ({"input": [5]}, "input[0]"),
    ({"input": [user("q"), {"type": "mcp_call"}]}, "input[1].type"),
    ({"input": [user("q"), {"type": "totally_new_item"}]}, "input[1].type"),
    ({"input": [{"type": 3}]}, "input[0].type"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": []}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": {"url": 5}}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"type": "reasoning", "encrypted_content": 5}]}, "input[0].encrypted_content"),
    ({"input": [user("q"), {"role": "user", "content": 7}]}, "input[1].content"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text"),
    ({"input": [{"role": "user", "content": ["bare string"]}]}, "input[0].content[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].image_url"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]}, "input[0].name"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"input": [{"type": "local_shell_call", "call_id": "c"}]}, "input[0].action"),
    ({"input": [{"type": "reasoning", "summary": "text"}]}, "input[0].summary"),
    ({"input": "q", "instructions": 3}, "instructions"),
    ({"input": "q", "tools": {}}, "tools"),
    ({"input": "q", "tools": ["exec"]}, "tools[0]"),
    ({"input": "q", "tools": [{"type": "function"}]}, "tools[0].name"),
    ({"input": "q", "tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters"),
    ({"input": "q", "tools": [{"type": "namespace", "name": "n"}]}, "tools[0].tools"),
    ({"input": "q", "tool_choice": "sometimes"}, "tool_choice"),
    ({"input": "q", "tool_choice": {"type": "allowed_tools", "mode": "x", "tools": []}}, "tool_choice.mode"),
    ({"input": "q", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"input": "q", "reasoning": "high"}, "reasoning"),
    ({"input": "q", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "q", "max_output_tokens": True}, "max_output_tokens"),
    ({"input": "q", "temperature": "hot"}, "temperature"),
    ({"input": "q", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"input": "q", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"input": "q", "include": "reasoning.encrypted_content"}, "include"),
    ({"input": "q", "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
])
def test_invalid_input_is_a_400_naming_the_field(body, param):
    fails(body, param)


@pytest.mark.parametrize(("fields", "param"), [
    ({"stream": "yes"}, "stream"),
    ({"store": "no"}, "store"),
    ({"stream_options": "x"}, "stream_options"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tool_choice": "required", "tools": []}, "tool_choice"),
    ({"tool_choice": {"type": "function", "name": "nope"}, "tools": [EXEC]}, "tool_choice"),
    ({"tool_choice": {"type": "function", "name": "exec_command"}}, "tool_choice"),
    ({"tool_choice": {"type": "web_search"}, "tools": [EXEC]}, "tool_choice"),
    ({"tool_choice": {"type": "local_shell"}, "tools": [EXEC]}, "tool_choice"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "nope"}]},
      "tools": [EXEC]}, "tool_choice"),
])
def test_wrong_types_and_unoffered_tools_are_400s_naming_the_field(fields, param):
    fails({"input": "q", **fields}, param)


def test_a_hosted_tool_choice_narrows_to_that_tool_and_a_dropped_one_leaves_it_to_the_model():
    t = translate({"input": "q", "tools": [EXEC, {"type": "local_shell"}], "tool_choice": {"type": "local_shell"}})
    assert [x["function"]["name"] for x in t.body["tools"]] == ["shell"]
    assert "`shell`" in t.body["messages"][0]["content"]
    dropped = translate({"input": "q", "tools": [EXEC, {"type": "file_search"}], "tool_choice": {"type": "file_search"}},
                        drop_unsupported_tools=True)
    assert [x["function"]["name"] for x in dropped.body["tools"]] == ["exec_command"]
    assert dropped.body["messages"] == [{"role": "user", "content": "q"}]


@pytest.mark.parametrize(("fields", "param"), [
    ({"top_logprobs": 2}, "top_logprobs"), ({"top_logprobs": 21}, "top_logprobs"), ({"top_logprobs": "2"}, "top_logprobs"),
    ({"include": ["message.output_text.logprobs"]}, "include"),
    ({"truncation": "sometimes"}, "truncation"),
    ({"max_tool_calls": -1}, "max_tool_calls"), ({"max_tool_calls": "3"}, "max_tool_calls"),
])
def test_fields_asking_for_what_mimo_cannot_give_are_400s_naming_them(fields, param):
    fails({"input": "q", **fields}, param)


def test_max_tool_calls_zero_offers_no_tool():
    t = translate({"input": "q", "tools": [EXEC], "tool_choice": "required", "max_tool_calls": 0})
    assert "tools" not in t.body and t.body["messages"] == [{"role": "user", "content": "q"}]


def test_unencodable_values_are_a_400_not_a_crash():
    fails({"input": "q", "tools": [{"type": "function", "name": "f",
                                    "parameters": {"type": "object", "default": 2 ** 70}}]}, None)


# ---------------------------------------------------------------- Codex fixtures

def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"codex-0.169-request-{name}.json").read_text())["body"]


@pytest.mark.parametrize("name", ["gpt-5.5", "mimo-v2.5-pro"])
@pytest.mark.parametrize("native", [True, False])
def test_codex_fixtures_translate(name, native):
    body = _fixture(name)
    t = translate(copy.deepcopy(body), native_web_search=native)
    developer = [m for m in body["input"] if m.get("role") == "developer"]
    systems = [m for m in t.body["messages"] if m["role"] == "system"]
    assert len(systems) == len(developer)
    for item, msg in zip(developer, systems):
        assert msg["content"] == "\n\n".join(p["text"] for p in item["content"])
    assert [m["role"] for m in t.body["messages"]] == ["system", "system", "user", "user"]
    assert t.include_encrypted is True
    web = [x for x in t.body["tools"] if x["type"] == "web_search"]
    if native:
        assert web == [{"type": "web_search"}] and t.web_search is None
    else:
        assert web == [] and t.web_search["type"] == "web_search"
    if name == "gpt-5.5":
        assert t.tool_map["apply_patch"] == ToolSpec("custom", "apply_patch")
        patch_tool = next(x for x in t.body["tools"] if x.get("function", {}).get("name") == "apply_patch")
        assert patch_tool["function"]["parameters"]["required"] == ["input"]
        assert "*** Begin Patch" in patch_tool["function"]["description"]
        assert t.body["reasoning_effort"] == "medium"
    else:
        assert t.tool_map["multi_agent_v1__spawn_agent"] == ToolSpec("function", "spawn_agent", "multi_agent_v1")
        assert "reasoning_effort" not in t.body and t.body["thinking"] == {"type": "enabled"}


def test_codex_follow_up_turn_with_history_round_trips():
    body = _fixture("gpt-5.5")
    body["input"] += [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}], "content": None,
         "encrypted_content": SEALER.seal("Let me look.")},
        {"type": "function_call", "name": "exec_command", "arguments": "{\"cmd\":\"ls\"}", "call_id": "call_a"},
        {"type": "function_call_output", "call_id": "call_a", "output": "README.md"},
        {"type": "reasoning", "summary": [], "encrypted_content": SEALER.seal("Now patch.")},
        {"type": "custom_tool_call", "status": "completed", "call_id": "call_b", "name": "apply_patch",
         "input": "*** Begin Patch\n*** End Patch\n"},
        {"type": "custom_tool_call_output", "call_id": "call_b", "output": "{\"output\":\"Done!\"}"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Patched."}],
         "phase": "final_answer"},
        user("thanks"),
    ]
    messages = translate(body).body["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user", "user", "assistant", "tool",
                                             "assistant", "tool", "assistant", "user"]
    assert messages[4]["reasoning_content"] == "Let me look."
    assert messages[6]["reasoning_content"] == "Now patch."
    assert messages[6]["tool_calls"][0]["function"]["name"] == "apply_patch"


# ---------------------------------------------------------------- fuzz

_json_leaf = st.none() | st.booleans() | st.integers(-10, 10) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.sampled_from(["", "auto", "none", "required", "user", "assistant", "function", "text", "x"]) | st.text(max_size=8)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.sampled_from(["type", "role", "content", "text", "name", "call_id",
                                                         "arguments", "output", "tools", "input", "image_url",
                                                         "encrypted_content", "summary", "action", "format",
                                                         "namespace", "mode", "effort", "schema", "file_data"]),
                                       inner, max_size=5), max_leaves=20)
_item_types = st.sampled_from(["message", "reasoning", "function_call", "function_call_output", "custom_tool_call",
                               "custom_tool_call_output", "local_shell_call", "local_shell_call_output",
                               "tool_search_call", "tool_search_output", "web_search_call", "item_reference",
                               "compaction", "input_text", "input_image", "input_file", "function", "custom",
                               "namespace", "web_search", "local_shell", "tool_search", "json_schema"])
_typed = st.builds(lambda t, rest: {**rest, "type": t}, _item_types,
                   st.dictionaries(st.sampled_from(["role", "content", "call_id", "name", "arguments", "output",
                                                    "input", "tools", "action", "summary", "encrypted_content",
                                                    "image_url", "text", "parameters", "format", "id"]),
                                   _json, max_size=5))
_ids = st.sampled_from(["c1", "c2", "c3"])
_names = st.sampled_from(["exec_command", "apply_patch", "shell", "f"])
_texts = st.sampled_from(["", "hi", " ", "x" * 3])
_parts = st.lists(st.one_of(
    st.builds(lambda t: {"type": "input_text", "text": t}, _texts),
    st.builds(lambda t: {"type": "output_text", "text": t}, _texts),
    st.just({"type": "input_image", "image_url": IMAGE}), st.just({"type": "input_image", "file_id": "f1"}),
    st.just({"type": "input_file", "filename": "a.txt", "file_data": "aGk="}),
), max_size=3)
_items = st.one_of(
    st.builds(lambda r, c: {"type": "message", "role": r, "content": c},
              st.sampled_from(["user", "assistant", "system", "developer"]), _texts | _parts),
    st.builds(lambda b: {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}],
                         "encrypted_content": b},
              st.sampled_from([SEALER.seal("r"), SEALER.seal(""), "gAAAAforeign", None])),
    st.builds(lambda i, n, a, ns: {"type": "function_call", "call_id": i, "name": n, "arguments": a,
                                   "namespace": ns},
              _ids, _names, st.sampled_from(["{}", "bad", None, "{\"a\": 1}"]), st.sampled_from([None, "ns"])),
    st.builds(lambda i, o: {"type": "function_call_output", "call_id": i, "output": o}, _ids, _texts | _parts),
    st.builds(lambda i, n: {"type": "custom_tool_call", "call_id": i, "name": n, "input": "patch"}, _ids, _names),
    st.builds(lambda i: {"type": "custom_tool_call_output", "call_id": i, "output": "ok"}, _ids),
    st.builds(lambda i: {"type": "local_shell_call", "call_id": i, "action": {"type": "exec", "command": ["ls"]}},
              _ids),
    st.builds(lambda i: {"type": "local_shell_call_output", "id": i, "output": "ok"}, _ids),
    st.builds(lambda i: {"type": "tool_search_call", "call_id": i, "arguments": {"query": "q"}}, _ids | st.none()),
    st.builds(lambda i: {"type": "tool_search_output", "call_id": i,
                         "tools": [{"type": "function", "name": "found"}]}, _ids | st.none()),
    st.just({"type": "web_search_call", "action": {"type": "search", "query": "q"}}),
    st.just({"type": "item_reference", "id": "x"}),
    st.sampled_from([{"type": "compaction", "encrypted_content": SEALER.for_purpose(COMPACTION).seal("sum")},
                     {"type": "compaction", "encrypted_content": SEALER.seal("reasoning, not a summary")},
                     {"type": "compaction", "encrypted_content": "foreign"}]),
)
_tools = st.lists(st.one_of(
    st.builds(lambda n: {"type": "function", "name": n}, _names), st.just(APPLY_PATCH),
    st.just({"type": "local_shell"}), st.just({"type": "tool_search"}), st.just({"type": "web_search"}),
    st.just({"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f"}]}),
), max_size=5)
_choices = st.sampled_from([None, "auto", "none", "required", {"type": "function", "name": "f"},
                            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
                            {"type": "web_search"}])
_valid_body = st.fixed_dictionaries({"input": st.lists(_items, min_size=1, max_size=8)}, optional={
    "tools": _tools, "tool_choice": _choices, "instructions": _texts,
    "reasoning": st.sampled_from([None, {"effort": "none"}, {"effort": "high"}, {"summary": "auto"}]),
})
_noise_body = st.fixed_dictionaries({}, optional={
    "input": st.one_of(st.text(max_size=5), st.lists(_typed | _json | _items, max_size=5), _json),
    "instructions": _json, "tools": st.lists(_typed | _json, max_size=4) | _json,
    "tool_choice": _json | _typed, "reasoning": _json, "text": _json, "temperature": _json,
    "max_output_tokens": _json, "include": _json, "parallel_tool_calls": _json,
})
_body = _valid_body | _noise_body


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_body, st.sampled_from(["mimo-v2.5-pro", "mimo-v2.5", "mimo-v2-flash"]), st.booleans(), st.booleans())
def test_any_json_body_translates_or_raises_openai_error(body, model, native, drop):
    try:
        t = chat_request_from_responses(body, upstream_model=model, sealer=SEALER,
                                        native_web_search=native, drop_unsupported_tools=drop)
    except OpenAIError as err:
        assert err.status == 400
        return
    check_mimo_rules(t.body)
    for call in (c for m in t.body["messages"] for c in m.get("tool_calls", ())):
        assert call["function"]["name"] in t.tool_map
