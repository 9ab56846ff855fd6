"""Codex CLI (pinned, see conftest) with its built-in OpenAI provider pointed at the example
gateway by `openai_base_url`, as most users configure it: Responses over one WebSocket (a warm-up,
then frames chained with previous_response_id), remote compaction mid-turn, and HTTPS when the
gateway has WebSockets off."""

from __future__ import annotations

import secrets

import pytest

from mimo_asgi.testing import Answer, ToolCall, Usage
from mimo_asgi.translate._items import COMPACTED
from mimo_asgi.translate.compaction import SUMMARY_SYSTEM

pytestmark = pytest.mark.e2e
SUMMARY = "## Goal\nRun echo with the token.\n## State\nThe command ran.\n## Next steps\nSay what it printed."


def assert_no_websocket_trouble(run) -> None:
    """What Codex prints when the gateway's WebSocket fails it: none of it."""
    text = run.stdout + run.stderr
    for sign in ("Falling back from WebSockets", "Reconnecting", "failed to connect to Responses WebSocket"):
        assert sign not in text, run.describe()


def has_tool_result(body) -> bool:
    return any(m.get("role") == "tool" for m in body["messages"])


def is_summary_request(body) -> bool:
    return body["messages"][0] == {"role": "system", "content": SUMMARY_SYSTEM}


def test_a_plain_turn_goes_over_one_websocket(builtin_codex, fake):
    run, scopes = builtin_codex()
    fake.queue(Answer(reasoning="A greeting.", text="Hello over the socket!"))

    result = run("say hi")

    assert result.returncode == 0, result.describe()
    assert_no_websocket_trouble(result)
    assert [i["text"] for i in result.items("agent_message")] == ["Hello over the socket!"]
    assert scopes.count("websocket") == 1 and scopes.count("http") == 0
    [request] = fake.requests  # the warm-up (generate: false) never reaches MiMo
    body = request.body
    assert body["messages"][0]["content"].startswith("You are Codex")  # rebuilt from the warm-up's input
    assert body["messages"][-1] == {"role": "user", "content": "say hi"}


def test_a_tool_round_trip_is_rebuilt_from_increments(builtin_codex, fake):
    run, scopes = builtin_codex()
    token = "tok-" + secrets.token_hex(8)

    def respond(body):
        if has_tool_result(body):
            return Answer(reasoning="It matches.", text=f"It printed {token}.", usage=Usage(prompt_tokens=400))
        return Answer(reasoning="Run echo first.", tool_calls=[ToolCall("exec_command", {"cmd": f"echo {token}"})],
                      usage=Usage(prompt_tokens=300))

    fake.respond_with(respond)
    result = run("Run echo with the token and tell me what it printed.", sandboxed=True)

    assert result.returncode == 0, result.describe()
    assert_no_websocket_trouble(result)
    [command] = result.items("command_execution")
    assert command["aggregated_output"].strip() == token
    assert [i["text"] for i in result.items("agent_message")] == [f"It printed {token}."]
    assert scopes.count("websocket") == 1 and scopes.count("http") == 0
    assert len(fake.requests) == 2
    messages = fake.requests[1].body["messages"]  # the frame held only the output; MiMo gets it all
    assert messages[0]["content"].startswith("You are Codex")
    [assistant] = [m for m in messages if m["role"] == "assistant"]
    [tool] = [m for m in messages if m["role"] == "tool"]
    assert assistant["reasoning_content"] == "Run echo first."  # sealed by us, restored from the connection
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"] and token in tool["content"]


def compacting(fake, token: str):
    """MiMo's side of a turn that compacts mid-way: a tool call (with usage over the limit), the
    summary when asked for one, then the answer once the summary is in the conversation."""

    def respond(body):
        if is_summary_request(body):
            return Answer(text=SUMMARY, usage=Usage(prompt_tokens=600, completion_tokens=40))
        if any(m["content"] == COMPACTED + SUMMARY for m in body["messages"] if m["role"] == "system"):
            return Answer(reasoning="", text=f"It printed {token}.", usage=Usage(prompt_tokens=50))
        return Answer(reasoning="Run it.", tool_calls=[ToolCall("exec_command", {"cmd": f"echo {token}"})],
                      usage=Usage(prompt_tokens=5000, completion_tokens=10))

    fake.respond_with(respond)


@pytest.mark.parametrize("websocket", ["bridge", "off"], ids=["over-the-websocket", "over-https"])
def test_an_auto_compaction_mid_turn_and_the_turn_going_on(builtin_codex, fake, websocket):
    run, scopes = builtin_codex(websocket=websocket, auto_compact=100)
    token = "tok-" + secrets.token_hex(8)
    compacting(fake, token)

    result = run("Run echo with the token and tell me what it printed.", sandboxed=True)

    assert result.returncode == 0, result.describe()
    if websocket == "bridge":
        assert_no_websocket_trouble(result)
    assert "Reconnecting" not in result.stderr, result.describe()  # a 426 sends Codex to HTTPS at once
    assert [i["text"] for i in result.items("agent_message")] == [f"It printed {token}."]
    summaries = [r for r in fake.requests if is_summary_request(r.body)]
    assert len(summaries) == 1 and token in summaries[0].body["messages"][1]["content"]  # the history was read
    after = fake.requests[-1].body["messages"]
    assert {"role": "system", "content": COMPACTED + SUMMARY} in after  # the summary reached MiMo
    assert not any(m["role"] == "tool" for m in after)  # Codex dropped the call; the summary stands for it
    if websocket == "bridge":
        assert scopes.count("websocket") == 1 and scopes.count("http") == 0
    else:
        assert scopes.count("websocket") == 1 and scopes.count("http") == len(fake.requests)
