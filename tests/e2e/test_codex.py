"""Codex CLI (pinned, see conftest) driving the example gateway in front of the fake MiMo.

Each scenario checks both ends: what Codex did and printed (its `--json` events, exit status, the
workspace) and what MiMo received (`fake.requests`).
"""

from __future__ import annotations

import json
import logging
import secrets

import pytest
from support import TEST_KEY, wait_for

from mimo_asgi.testing import Answer, ToolCall, Usage, key_fingerprint

pytestmark = pytest.mark.e2e
UPSTREAM_MODEL = "mimo-v2.5-pro"  # what the gateway fixture maps gpt-5.5 to

# Responses-only fields Codex always sends; none of them may reach MiMo's chat completions.
RESPONSES_ONLY = {"input", "instructions", "store", "include", "prompt_cache_key", "client_metadata", "text", "reasoning"}


def has_tool_result(body):
    return any(m.get("role") == "tool" for m in body["messages"])


def tool_turn(fake):
    """The second upstream request (after Codex ran the tool): its assistant and tool messages."""
    assert len(fake.requests) == 2, [r.body["messages"][-1] for r in fake.requests]
    messages = fake.requests[1].body["messages"]
    [assistant] = [m for m in messages if m["role"] == "assistant"]
    [tool] = [m for m in messages if m["role"] == "tool"]
    return assistant, tool


def test_plain_answer_shows_reasoning_text_and_exact_usage(codex, fake):
    usage = Usage(prompt_tokens=1234, completion_tokens=56, cached_tokens=1024, reasoning_tokens=21)
    fake.queue(Answer(reasoning="The user greets me.", text="Hello from the gateway!", usage=usage))

    run = codex("say hi")

    assert run.returncode == 0, run.describe()
    assert [i["text"] for i in run.items("reasoning")] == ["The user greets me."]
    assert [i["text"] for i in run.items("agent_message")] == ["Hello from the gateway!"]
    [done] = run.of_type("turn.completed")
    assert done["usage"]["input_tokens"] == 1234 and done["usage"]["cached_input_tokens"] == 1024
    assert done["usage"]["output_tokens"] == 56 and done["usage"]["reasoning_output_tokens"] == 21
    assert not run.of_type("error") and not run.of_type("turn.failed")

    [request] = fake.requests
    body = request.body
    assert request.path == "/v1/chat/completions" and request.status == 200
    assert body["model"] == UPSTREAM_MODEL and body["stream"] is True
    assert not RESPONSES_ONLY & body.keys()
    # Codex's two developer messages (system prompt, skills) become system messages, in order.
    roles = [m["role"] for m in body["messages"]]
    assert roles[:2] == ["system", "system"] and "developer" not in roles
    assert body["messages"][0]["content"].startswith("You are Codex")
    assert body["messages"][-1] == {"role": "user", "content": "say hi"}
    # Codex's real tool set: the custom apply_patch becomes a function with one string `input`.
    functions = {t["function"]["name"]: t["function"] for t in body["tools"] if t["type"] == "function"}
    patch = functions["apply_patch"]["parameters"]
    assert patch["properties"].keys() == {"input"} and patch["properties"]["input"]["type"] == "string"
    assert patch["required"] == ["input"] and "*** Begin Patch" in functions["apply_patch"]["description"]
    assert functions["exec_command"]["parameters"]["required"] == ["cmd"]
    # The gateway's own key goes upstream, never the client's; Codex's session headers stay behind.
    assert request.key_fingerprint == key_fingerprint(TEST_KEY)
    assert not [h for h in request.headers if h.startswith(("x-codex", "session", "thread", "originator"))]


def test_shell_tool_runs_and_its_output_reaches_mimo_with_reasoning_restored(codex, fake):
    token = "tok-" + secrets.token_hex(8)
    first = Usage(prompt_tokens=300, completion_tokens=20, cached_tokens=100, reasoning_tokens=7)
    second = Usage(prompt_tokens=400, completion_tokens=30, cached_tokens=250, reasoning_tokens=5)

    def respond(body):
        if has_tool_result(body):
            return Answer(reasoning="The output matches.", text=f"The command printed {token}.", usage=second)
        return Answer(reasoning="I should run echo first.", usage=first,
                      tool_calls=[ToolCall("exec_command", {"cmd": f"echo {token}"})])

    fake.respond_with(respond)
    run = codex("Run echo with the token and tell me what it printed.", sandboxed=True)

    assert run.returncode == 0, run.describe()
    [command] = run.items("command_execution")
    assert f"echo {token}" in command["command"] and command["exit_code"] == 0, command
    assert command["aggregated_output"].strip() == token
    assert [i["text"] for i in run.items("agent_message")] == [f"The command printed {token}."]
    [done] = run.of_type("turn.completed")  # one Codex turn, two model requests: usage adds up
    assert (done["usage"]["input_tokens"], done["usage"]["cached_input_tokens"]) == (700, 350)
    assert (done["usage"]["output_tokens"], done["usage"]["reasoning_output_tokens"]) == (50, 12)

    assistant, tool = tool_turn(fake)
    assert assistant["reasoning_content"] == "I should run echo first."  # sealed by us, restored from Codex's replay
    [call] = assistant["tool_calls"]
    assert call["function"]["name"] == "exec_command"
    assert json.loads(call["function"]["arguments"]) == {"cmd": f"echo {token}"}
    assert tool["tool_call_id"] == call["id"] and token in tool["content"]
    assert fake.requests[1].body["model"] == UPSTREAM_MODEL


def test_apply_patch_custom_tool_creates_the_file(codex, fake, workspace):
    token = secrets.token_hex(8)
    patch = f"*** Begin Patch\n*** Add File: notes/hello.txt\n+hello {token}\n+second line\n*** End Patch\n"

    def respond(body):
        if has_tool_result(body):
            return Answer(reasoning="Patched.", text="Created notes/hello.txt.")
        return Answer(reasoning="I will add the file.", tool_calls=[ToolCall("apply_patch", {"input": patch})])

    fake.respond_with(respond)
    run = codex("Create notes/hello.txt.", sandboxed=True)

    assert run.returncode == 0, run.describe()
    assert (workspace / "notes" / "hello.txt").read_text() == f"hello {token}\nsecond line\n"
    [change] = run.items("file_change")
    assert change["status"] == "completed" and [c["kind"] for c in change["changes"]] == ["add"]
    assert [i["text"] for i in run.items("agent_message")] == ["Created notes/hello.txt."]

    assistant, tool = tool_turn(fake)
    [call] = assistant["tool_calls"]
    # Codex replays a custom_tool_call with the raw patch; MiMo sees its own function call again.
    assert call["function"]["name"] == "apply_patch" and json.loads(call["function"]["arguments"]) == {"input": patch}
    assert assistant["reasoning_content"] == "I will add the file."
    assert tool["tool_call_id"] == call["id"] and "Success" in tool["content"]


@pytest.mark.parametrize(("answer", "upstream_status", "shown"), [
    (Answer.rate_limited(), 429, "429"),
    (Answer(text="This answer is cut off in the middle " * 4, cut_after=6), 200, "stream disconnected before completion"),
], ids=["rate-limited", "cut-mid-stream"])
def test_upstream_failure_ends_codex_with_an_error_and_no_hang(codex, fake, answer, upstream_status, shown):
    fake.respond_with(lambda body: answer)  # any retry would get the same failure

    run = codex("say hi")

    assert run.returncode != 0, run.describe()
    [failed] = run.of_type("turn.failed")
    assert shown in failed["error"]["message"], run.describe()
    assert not run.of_type("turn.completed")
    assert run.elapsed < 20, run.describe()  # no reconnect loop (RUN_TIMEOUT would fail it anyway)
    assert TEST_KEY not in run.stdout + run.stderr
    [request] = fake.requests  # retries are off in the config: exactly one upstream attempt
    assert request.status == upstream_status and request.body["model"] == UPSTREAM_MODEL


def test_cut_stream_is_retried_without_showing_or_replaying_the_cut_text(codex, fake):
    cut = Answer(reasoning="", text="This answer is cut off in the middle " * 4, cut_after=4)
    fake.queue(cut, Answer(reasoning="", text="The whole answer."))

    run = codex("say hi", "-c", "model_providers.gw.stream_max_retries=1")  # Codex's default is 5

    assert run.returncode == 0, run.describe()
    assert [i["text"] for i in run.items("agent_message")] == ["The whole answer."]
    assert len(fake.requests) == 2 and fake.requests[0].status == 200
    assert fake.requests[1].body["messages"] == fake.requests[0].body["messages"]


def test_gateway_accounts_a_finished_codex_turn_as_completed(codex, fake, caplog):
    """Codex closes its connection once the response is complete: not a cancellation."""
    caplog.set_level(logging.INFO, logger="mimo_asgi")
    fake.queue(Answer(text="Done."))

    run = codex("say hi")

    assert run.returncode == 0, run.describe()
    assert wait_for(lambda: any("outcome=" in r.getMessage() for r in caplog.records if r.name == "mimo_asgi"))
    [line] = [r.getMessage() for r in caplog.records if r.name == "mimo_asgi" and "outcome=" in r.getMessage()]
    assert "status=200 outcome=completed" in line, line


def test_custom_provider_compacts_locally_with_an_ordinary_request(codex, fake):
    """A custom provider gets no remote compaction: Codex asks for the summary with an ordinary
    request ending in its checkpoint prompt, and carries the summary on as a user message."""
    token = "tok-" + secrets.token_hex(8)
    summary = f"Summary: echo {token} was run."

    def respond(body):
        last = body["messages"][-1]
        if last["role"] == "user" and "CONTEXT CHECKPOINT COMPACTION" in str(last["content"]):
            return Answer(reasoning="", text=summary, usage=Usage(prompt_tokens=60))
        if any(summary in str(m.get("content")) for m in body["messages"] if m["role"] == "user"):
            return Answer(reasoning="", text=f"It printed {token}.", usage=Usage(prompt_tokens=50))
        return Answer(reasoning="Run it.", tool_calls=[ToolCall("exec_command", {"cmd": f"echo {token}"})],
                      usage=Usage(prompt_tokens=5000, completion_tokens=10))

    fake.respond_with(respond)
    run = codex("Run echo with the token and tell me what it printed.", "-c", "model_auto_compact_token_limit=100",
                sandboxed=True)

    assert run.returncode == 0, run.describe()
    assert [i["text"] for i in run.items("agent_message")] == [f"It printed {token}."]
    compactions = [r for r in fake.requests if "CONTEXT CHECKPOINT COMPACTION" in str(r.body["messages"][-1]["content"])]
    assert len(compactions) == 1 and compactions[0].body["stream"] is True
    assert any(summary in str(m["content"]) for m in fake.requests[-1].body["messages"] if m["role"] == "user")
