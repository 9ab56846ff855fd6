"""Properties of the pure translators over generated inputs.

- Any valid MiMo chunk sequence (reasoning, text, interleaved tool-call fragments with late ids
  and names, compound deltas, usage anywhere, a second choice, in-band errors, every way a
  stream can end) -> ResponsesStream keeps every stream invariant and loses no text, reasoning
  or arguments; -> ChatStream ends with one `[DONE]`, names the client's model everywhere and
  loses no text.
- Any valid-ish Responses body (items of every type, tools of every kind, every tool_choice)
  -> a MiMo body the faithful fake's validator accepts, or an OpenAIError 400; nothing else.

(The SSE decoder and the chat request translator have their own property tests.)
"""

from __future__ import annotations

import base64
import copy
import json
from unittest import mock
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mimo_asgi._pump import EncodedEvents, pump
from mimo_asgi._writer import HTTPWriter
from mimo_asgi._sse import SSEDecoder
from mimo_asgi.translate import _response_object as ro
from mimo_asgi._seal import COMPACTION, ReasoningSealer
from mimo_asgi.testing import DEFAULT_MODELS
from mimo_asgi.testing._validate import Host, validate
from mimo_asgi.translate.chat import chat_request_from_chat
from mimo_asgi.translate.chat_stream import ChatStream
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_request import chat_request_from_responses
from mimo_asgi.translate.responses_stream import ResponsesStream

from unit.invariants import check_responses_stream

SEALER = ReasoningSealer("property-test-key")
UPSTREAM_MODEL = "mimo-v2.5-pro"
SECRET = "sk-live.Q7/x+Zr=9fK2"  # not key-shaped: only redaction by value removes it
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=5)

# -- generated MiMo streams ---------------------------------------------------------------------


@dataclass
class Script:
    """A generated MiMo stream: its chunks, and what a faithful translation must keep."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    content: list[str] = field(default_factory=list)  # text fed before any terminal
    reasoning: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, arguments) per call
    call_ids: list[str] = field(default_factory=list)  # ids sent on a call's first fragment
    usage: dict[str, int] | None = None
    finish: str | None = None
    error: bool = False
    ending: str = "done"


def _delta_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "8b51", "object": "chat.completion.chunk", "created": 1, "model": UPSTREAM_MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


@st.composite
def _call_run(draw: Any, used_ids: set[str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[str]]:
    """One run of parallel calls: distinct indices, fragments interleaved across calls, ids on
    the first fragment / a later one / never, names on the first fragment / a later one / never."""
    count = draw(st.integers(1, 3))
    indices = draw(st.lists(st.integers(0, 6), min_size=count, max_size=count, unique=True))
    per_call: list[list[dict[str, Any]]] = []
    expected: list[tuple[str, str]] = []
    first_ids: list[str] = []
    for index in indices:
        name = draw(st.sampled_from(["exec_command", "read_file", "f-1", "a_b"]))
        arguments = draw(st.sampled_from(["", "{}", '{"cmd": "ls -la"}', '{"path": "/tmp/\\u00e9 x"}', "{bad"]))
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(arguments) - 1)), max_size=3)))
        pieces = [arguments[a:b] for a, b in zip([0, *cuts], [*cuts, len(arguments)]) if arguments[a:b]]
        fragments: list[dict[str, Any]] = [{"index": index, "function": {"arguments": p}} for p in pieces] or [
            {"index": index, "function": {}}]
        call_id = f"call_{len(used_ids)}"
        used_ids.add(call_id)
        id_at = draw(st.sampled_from(["first", "late", "never"]))
        name_at = draw(st.sampled_from(["first", "first", "late", "never"]))
        head = {"index": index, "id": call_id if id_at == "first" else None, "type": "function",
                "function": {"name": name if name_at == "first" else None, "arguments": ""}}
        fragments.insert(0, head)
        if id_at == "late" and len(fragments) > 1:
            fragments[-1] = {**fragments[-1], "id": call_id}
        if name_at == "late" and len(fragments) > 1:
            fragments[1] = {**fragments[1], "function": {**fragments[1]["function"], "name": name}}
        got_name = name if name_at == "first" or (name_at == "late" and len(fragments) > 1) else ""
        expected.append((got_name, arguments or "{}"))
        if id_at == "first":
            first_ids.append(call_id)
        per_call.append(fragments)
    # interleave the calls' fragments, each call's own order kept
    order = draw(st.permutations([i for i, f in enumerate(per_call) for _ in f]))
    positions = [0] * len(per_call)
    fragments_out = []
    for which in order:
        fragments_out.append(per_call[which][positions[which]])
        positions[which] += 1
    return fragments_out, expected, first_ids


@st.composite
def mimo_streams(draw: Any) -> Script:
    script = Script()
    used_ids: set[str] = set()
    ops: list[tuple[str, Any]] = []  # ("reasoning" | "content", text) or ("call", fragment)
    kinds = draw(st.lists(st.sampled_from(["reasoning", "content", "calls"]), max_size=5))
    for i, kind in enumerate(kinds):
        if kind == "calls":
            if i and kinds[i - 1] == "calls":
                continue  # one run of calls: distinct indices until text or reasoning comes between
            fragments, expected, ids = draw(_call_run(used_ids))
            ops += [("call", f) for f in fragments]
            script.calls += expected
            script.call_ids += ids
        else:
            ops += [(kind, t) for t in draw(st.lists(_TEXT, min_size=1, max_size=3))]
    rank = {"reasoning": 0, "content": 1, "call": 2}
    # Pack ops into chunks; a chunk may carry several kinds in the order the translator reads them.
    deltas: list[dict[str, Any]] = []
    last_rank = 99
    for kind, value in ops:
        fits = rank[kind] > last_rank or (kind == "call" and rank[kind] == last_rank)
        merge = deltas and fits and draw(st.booleans())
        if not merge:
            deltas.append({})
        delta = deltas[-1]
        if kind == "call":
            delta.setdefault("tool_calls", []).append(value)
        else:
            delta["reasoning_content" if kind == "reasoning" else "content"] = value
        last_rank = rank[kind]
    chunks = [_delta_chunk(d) for d in deltas]
    if chunks and draw(st.booleans()):
        chunks[0]["choices"][0]["delta"]["role"] = "assistant"
    for c in chunks:  # a second choice is not a Responses concept: never translated
        if draw(st.integers(0, 9)) == 0:
            c["choices"].append({"index": 1, "delta": {"content": "IGNORED"}, "finish_reason": None})
    error_at = draw(st.none() | st.integers(0, len(chunks)))
    finish = draw(st.none() | st.sampled_from(["stop", "tool_calls", "length", "content_filter"]))
    if finish is not None:
        if chunks and draw(st.booleans()):
            chunks[-1]["choices"][0]["finish_reason"] = finish  # finish riding the last delta
        else:
            chunks.append(_delta_chunk({}, finish))
    usage_at = draw(st.none() | st.integers(0, len(chunks)))
    usage = {"prompt_tokens": draw(st.integers(0, 10**6)), "completion_tokens": draw(st.integers(0, 10**6))}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if usage_at is not None:
        if usage_at == len(chunks):  # MiMo's trailing usage-only chunk
            chunks.append({**_delta_chunk({}), "choices": [], "usage": usage})
        else:
            chunks[usage_at]["usage"] = usage
    if error_at is not None:
        chunks.insert(min(error_at, len(chunks)),
                      {"error": {"code": "500", "message": f"upstream broke, key {SECRET}", "param": "", "type": ""}})
    script.chunks = chunks
    script.ending = draw(st.sampled_from(["done", "eof", "timeout"]))
    # What the translation must keep: everything fed before the in-band error (if any).
    fed = chunks[: next((i for i, c in enumerate(chunks) if "error" in c), len(chunks))]
    script.error = len(fed) < len(chunks)
    script.content = [c["choices"][0]["delta"].get("content", "") for c in fed if c.get("choices")]
    script.reasoning = [c["choices"][0]["delta"].get("reasoning_content", "") for c in fed if c.get("choices")]
    script.usage = next((c["usage"] for c in reversed(fed) if "usage" in c), None)
    script.finish = next((c["choices"][0]["finish_reason"] for c in fed
                          if c.get("choices") and c["choices"][0]["finish_reason"]), None)
    if script.error:  # calls after the error never arrive; compare only when nothing was cut
        fed_fragments = sum(len(c["choices"][0]["delta"].get("tool_calls", [])) for c in fed if c.get("choices"))
        all_fragments = sum(len(c["choices"][0]["delta"].get("tool_calls", [])) for c in chunks if c.get("choices"))
        if fed_fragments != all_fragments:
            script.calls = None  # type: ignore[assignment]
    return script


def _expected_status(script: Script) -> str:
    if script.error or script.ending == "timeout":
        return "failed"
    if script.finish in ("length", "content_filter"):
        return "incomplete"
    if script.finish is not None:
        return "completed"
    if script.ending == "eof":
        return "failed"  # truncated
    something = any(script.content) or any(script.reasoning) or script.calls
    return "completed" if something else "failed"  # [DONE] on an empty stream


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mimo_streams(), st.booleans())
def test_responses_stream_keeps_its_invariants_and_loses_nothing(script: Script, include: bool) -> None:
    stream = ResponsesStream({"model": "gpt-5.5", "input": "hi"}, response_id="resp_p", model="gpt-5.5", tool_map={},
                             sealer=SEALER, include_encrypted=include, created_at=1795475624, secrets=(SECRET,))
    events = stream.start()
    for chunk in copy.deepcopy(script.chunks):
        events += stream.feed(chunk)
    if script.ending == "timeout":
        events += stream.fail(OpenAIError(504, "MiMo upstream timed out", code="upstream_timeout"))
    else:
        events += stream.finish(saw_done=script.ending == "done")
    assert stream.feed(_delta_chunk({"content": "late"})) == [] and stream.finish(saw_done=True) == []

    response = check_responses_stream(events)
    assert response["status"] == _expected_status(script), (response["status"], response.get("error"))
    assert SECRET not in json.dumps(events) and "IGNORED" not in json.dumps(events)
    output = response["output"]
    assert all(i["status"] != "in_progress" for i in output)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "".join(script.content)  # every piece of text reached the client
    reasoning = [i for i in output if i["type"] == "reasoning"]
    if response["status"] != "failed":  # a cut item stays out of a failed output (Codex would replay it)
        assert "".join(i["content"][0]["text"] for i in output if i["type"] == "message") == "".join(script.content)
        assert "".join(i["summary"][0]["text"] for i in reasoning) == "".join(script.reasoning)
    for item in reasoning:
        assert ("encrypted_content" in item) is include
        if include:
            assert SEALER.unseal(item["encrypted_content"]) == item["summary"][0]["text"]
    calls = [i for i in output if i["type"] == "function_call"]
    if script.calls is not None and response["status"] != "failed":
        assert sorted((c["name"], c["arguments"]) for c in calls) == sorted(script.calls)
    call_ids = [c["call_id"] for c in calls]
    assert len(set(call_ids)) == len(call_ids) and all(call_ids)
    assert set(script.call_ids) <= set(call_ids) or script.calls is None or response["status"] == "failed"
    usage = response["usage"]
    if script.usage is not None:
        assert (usage["input_tokens"], usage["output_tokens"]) == (script.usage["prompt_tokens"],
                                                                    script.usage["completion_tokens"])


def _chat_out(raw: bytes) -> list[Any]:
    decoder = SSEDecoder()
    return [e.data if e.data == "[DONE]" else orjson.loads(e.data) for e in decoder.feed(raw) + decoder.close()]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mimo_streams(), st.booleans())
def test_chat_stream_ends_once_names_the_clients_model_and_loses_nothing(script: Script, include_usage: bool) -> None:
    stream = ChatStream(model="my-alias", include_usage=include_usage, secrets=(SECRET,))
    raw = b""
    for chunk in copy.deepcopy(script.chunks):
        raw += stream.feed(chunk)
    if script.ending == "timeout":
        raw += stream.fail(OpenAIError(504, "MiMo upstream timed out", code="upstream_timeout"))
    else:
        raw += stream.finish(saw_done=script.ending == "done")
    assert stream.done and stream.feed(_delta_chunk({"content": "late"})) == b"" and stream.finish(saw_done=True) == b""

    out = _chat_out(raw)
    assert out[-1] == "[DONE]" and out.count("[DONE]") == 1
    assert UPSTREAM_MODEL.encode() not in raw and SECRET.encode() not in raw
    chunks = out[:-1]
    errors = [i for i, c in enumerate(chunks) if "error" in c]
    assert errors in ([], [len(chunks) - 1])
    failed = bool(errors)
    assert failed == (script.error or script.ending == "timeout" or (script.ending == "eof" and not script.finish))
    normal = chunks[:-1] if failed else chunks
    assert all(c["model"] == "my-alias" and c["object"] == "chat.completion.chunk" for c in normal)
    if not include_usage:
        assert all("usage" not in c for c in normal)
    content = "".join(choice["delta"].get("content") or "" for c in normal for choice in c["choices"]
                      if choice.get("index", 0) == 0)
    assert content == "".join(script.content)
    finishes = [choice["finish_reason"] for c in normal for choice in c["choices"] if choice.get("finish_reason")]
    assert finishes == ([script.finish] if script.finish else [])


def _texts(chunks: list[dict[str, Any]], style: str) -> list[str]:
    """The chunks as MiMo might write them: compact (as it does), with spaces, ASCII-escaped,
    with a trailing `usage: null`, with `model` last or repeated in a nested object."""
    out = []
    for chunk in chunks:
        if style == "usage-null" and "usage" not in chunk:
            chunk = {**chunk, "usage": None}
        elif style == "model-last":
            chunk = {k: v for k, v in chunk.items() if k != "model"} | {"model": chunk.get("model")}
        elif style == "model-nested":
            chunk = {**chunk, "meta": {"model": "x"}}
        if style == "spaces":
            out.append(json.dumps(chunk))
        elif style == "ascii":
            out.append(json.dumps(chunk, separators=(",", ":")))
        else:
            out.append(orjson.dumps(chunk).decode())
    return out


class _Client:
    """An ASGI `send` keeping every message the client receives."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


class _Upstream:
    def __init__(self, reads: list[bytes]) -> None:
        self.reads = reads

    async def aiter_bytes(self) -> Any:
        for read in self.reads:
            yield read


class _Counted:
    """A stream translator whose `forward` is counted, or refused (fast=False: `feed` alone)."""

    def __init__(self, machine: Any, fast: bool) -> None:
        self.machine, self.fast, self.forwarded = machine, fast, 0
        self.feed, self.finish, self.fail = machine.feed, machine.finish, machine.fail

    done = property(lambda self: self.machine.done)
    emitted_content = property(lambda self: self.machine.emitted_content)

    def forward(self, raw: bytes) -> bytes | None:
        out = self.machine.forward(raw) if self.fast else None
        self.forwarded += out is not None
        return out


def _drive(reads: list[bytes], machine: Any, *, fast: bool, start: bytes = b"") -> tuple[bytes, int]:
    """The relay's pump (`_pump.pump`) over `reads`, with `forward` allowed or not, writing
    through a real HTTP writer from its first phase (bytes held back until the first content,
    as a failover needs): the body the client receives, terminal included, and the events
    `forward` answered. An in-band error raised for a failover (before any content) ends it
    as `<raised CODE>`: the fast path must not change whether that happens."""
    counted, client = _Counted(machine, fast), _Client()
    writer = HTTPWriter(client, first_byte_timeout=60, keepalive_seconds=0)

    async def run() -> bytes:
        await writer.write(start, content=False)
        try:
            tail = await pump(_Upstream(reads), counted, writer, secrets=(SECRET,))
        except OpenAIError as err:
            assert not writer.started
            return f"<raised {err.code}>".encode()
        await writer.end(tail)
        assert client.messages[0]["type"] == "http.response.start"
        return b"".join(m.get("body", b"") for m in client.messages[1:])

    return anyio.run(run), counted.forwarded


def _drive_chat(stream: ChatStream, reads: list[bytes], *, fast: bool) -> tuple[bytes, int]:
    return _drive(reads, stream, fast=fast)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mimo_streams(), st.booleans(),
       st.sampled_from(["compact", "compact", "spaces", "ascii", "usage-null", "model-last", "model-nested"]),
       st.lists(st.integers(1, 400), max_size=30), st.sampled_from(["\n", "\r\n", "ÿ"]))
def test_chat_forward_gives_what_feed_gives(script: Script, include_usage: bool, style: str, cuts: list[int],
                                            odd: str) -> None:
    """`ChatStream.forward` (the relay's parse-free path for a whole read) never changes the
    answer: the client's chunks, usage, finish reason and content flag are those of `feed`
    alone, however MiMo's bytes are spelled and cut into reads (some reads are merged or cut
    mid-event; one event may end CRLF or hold invalid UTF-8)."""
    events = [b"data: " + text.encode() + b"\n\n" for text in _texts(copy.deepcopy(script.chunks), style)]
    if events and cuts:  # one odd event: a CRLF ending or a byte that is not UTF-8
        at = cuts[0] % len(events)
        events[at] = events[at][:-2] + b"\r\n\r\n" if odd == "\r\n" else events[at]
        if odd == "ÿ" and b'"content":"' in events[at]:
            events[at] = events[at].replace(b'"content":"', b'"content":"\xff', 1)
    reads = list(events)
    body = b"".join(events) + b"data: [DONE]\n\n"
    if len(cuts) > 3:  # re-cut the whole body at arbitrary places
        points = sorted({c % len(body) for c in cuts} - {0})
        reads = [body[a:b] for a, b in zip([0, *points], [*points, len(body)])]
    else:
        reads.append(b"data: [DONE]\n\n")
    plain = ChatStream(model="my-alias", include_usage=include_usage, secrets=(SECRET,))
    fast = ChatStream(model="my-alias", include_usage=include_usage, secrets=(SECRET,))
    expected, _ = _drive_chat(plain, reads, fast=False)
    got, forwarded = _drive_chat(fast, reads, fast=True)
    assert _chat_out(got) == _chat_out(expected)
    assert (fast.usage, fast.finish_reason, fast.emitted_content, fast.done) == \
        (plain.usage, plain.finish_reason, plain.emitted_content, plain.done)
    if style in ("spaces", "model-last", "model-nested", "ascii"):
        assert forwarded == 0 or style == "ascii"


def test_chat_forward_takes_mimos_plain_deltas_after_the_first_content() -> None:
    def event(chunk: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    stream = ChatStream(model="gpt-5.5", include_usage=False)
    first = event(_delta_chunk({"reasoning_content": "Let"}))
    later = event(_delta_chunk({"content": 'He said "hi" {ok} 你好'}))
    call = event(_delta_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]}))
    assert stream.forward(first) is None  # the first content goes through feed, which learns the envelope
    stream.feed(orjson.loads(first[6:]))
    for raw in (later, call):
        out = stream.forward(raw)
        assert out is not None and out.startswith(b"data: ") and out.endswith(b"\n\n")
        assert orjson.loads(out[6:]) == {**orjson.loads(raw[6:]), "model": "gpt-5.5"}
    for kept_for_feed in (_delta_chunk({"content": "x"}, finish="stop"), {**_delta_chunk({}), "usage": {"x": 1}},
                          {"error": {"message": "boom"}}, _delta_chunk({"content": "x", "error_message": "e"}),
                          {**_delta_chunk({"content": "x"}), "id": "other"}):
        assert stream.forward(event(kept_for_feed)) is None
    assert stream.forward(later + later) is None  # two events in one read: the decoder's job


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["content", "reasoning_content"]),
                          st.text(alphabet='ab "\\\n{}]é你', min_size=1, max_size=6)), min_size=1, max_size=25),
       st.dictionaries(st.integers(0, 30), st.integers(1, 400)), st.booleans())
def test_plain_deltas_in_reads_cut_as_mimos_are_all_forwarded_and_change_nothing(
        deltas: list[tuple[str, str]], cut_into_next: dict[int, int], unended: bool) -> None:
    """MiMo's reads: whole events, some cut inside the next one's line (read i = event i + the
    start of event i+1, read i+1 = the rest; a cut between a line's end and its blank line leaves
    the event to the decoder, rightly, and is not generated here). Every plain delta after the first content
    goes out through `forward` (the cut ones too), and the answer is the one `feed` alone gives,
    also when the stream ends on a `[DONE]` line without its blank line, in the last event's read."""
    chunks = [_delta_chunk({"role": "assistant", "content": ""}), *(_delta_chunk({k: t}) for k, t in deltas)]
    if not unended:  # else the stream ends right after a plain delta, with the `[DONE]` in its read
        chunks += [_delta_chunk({}, finish="stop"), {**_delta_chunk({}), "choices": [],
                                                    "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}]
    events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
    points, end = [], 0
    for i, event in enumerate(events):
        end += len(event)
        # Not into the event after the first content: `feed` takes that one's read, and so
        # whatever of the next event it holds (the equality below holds for any cut anyway).
        if i + 1 < len(events) and i in cut_into_next and i != 1:
            points.append(end + 1 + cut_into_next[i] % (len(events[i + 1]) - 2))  # inside its line
        elif i + 1 < len(events):
            points.append(end)
    if unended:
        events[-1] = b"data: [DONE]"
        points[-1] = len(b"".join(events))
    body = b"".join(events)
    reads = [body[a:b] for a, b in zip([0, *points], [*points, len(body)]) if b > a]
    plain = ChatStream(model="my-alias", include_usage=True)
    fast = ChatStream(model="my-alias", include_usage=True)
    expected, _ = _drive_chat(plain, reads, fast=False)
    got, forwarded = _drive_chat(fast, reads, fast=True)
    assert _chat_out(got) == _chat_out(expected)
    assert (fast.usage, fast.finish_reason) == (plain.usage, plain.finish_reason)
    assert forwarded == len(deltas) - 1
    assert _drive_responses(reads, fast=True)[:2] == _drive_responses(reads, fast=False)[:2]


def _drive_responses(reads: list[bytes], *, fast: bool) -> tuple[list[Any], dict[str, Any], int]:
    """What the relay's pump does with a Responses stream (ids made deterministic, nothing sealed):
    the client's events, the final response and the reads `forward` answered."""
    counter = iter(range(10_000))
    with mock.patch.object(ro, "new_id", lambda prefix: f"{prefix}_{next(counter)}"):
        stream = ResponsesStream({"model": "gpt-5.5", "input": "hi"}, response_id="resp_p", model="gpt-5.5",
                                 tool_map={}, sealer=None, include_encrypted=False, created_at=1795475624)
        machine = EncodedEvents(stream, encode=True)
        out, forwarded = _drive(reads, machine, fast=fast, start=machine.start())
    decoder = SSEDecoder()
    events = [(e.event, orjson.loads(e.data)) for e in decoder.feed(out) + decoder.close()]
    for _, data in events:  # the clock, not the translation
        if isinstance(data.get("response"), dict):
            data["response"].pop("completed_at", None)
    return events, {**stream.response, "completed_at": None}, forwarded


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mimo_streams(), st.sampled_from(["compact", "compact", "spaces", "ascii", "model-nested"]),
       st.lists(st.integers(1, 400), max_size=30), st.sampled_from(["\n", "\r\n", "ÿ", "tab"]))
def test_responses_forward_gives_what_feed_gives(script: Script, style: str, cuts: list[int], odd: str) -> None:
    """`ResponsesStream.forward` (the relay's parse-free path for a whole read) never changes the
    answer: the same events, byte for byte once parsed, and the same final response as `feed`
    alone, however MiMo's bytes are spelt and cut into reads."""
    events = [b"data: " + text.encode() + b"\n\n" for text in _texts(copy.deepcopy(script.chunks), style)]
    if events and cuts:  # one odd event: a CRLF ending, a byte that is not UTF-8, a raw tab in a string
        at = cuts[0] % len(events)
        if odd == "\r\n":
            events[at] = events[at][:-2] + b"\r\n\r\n"
        elif odd in ("ÿ", "tab"):
            events[at] = events[at].replace(b'"content":"', b'"content":"' + (b"\xff" if odd == "ÿ" else b"\t"), 1)
    reads = [*events, b"data: [DONE]\n\n"]
    if len(cuts) > 3:
        body = b"".join(reads)
        points = sorted({c % len(body) for c in cuts} - {0})
        reads = [body[a:b] for a, b in zip([0, *points], [*points, len(body)])]
    expected, expected_response, _ = _drive_responses(reads, fast=False)
    got, response, forwarded = _drive_responses(reads, fast=True)
    assert got == expected
    assert response == expected_response
    if style in ("spaces", "model-nested"):
        assert forwarded == 0


# -- generated Responses requests ---------------------------------------------------------------

_names = st.sampled_from(["exec_command", "apply_patch", "shell", "f", "read.file", "名前", "x" * 70, "ns__f",
                          "tool_search", "local_shell", "web_search", "a b"])
_namespaces = st.sampled_from([None, None, "ns", "mcp.server", "名"])
_ids = st.sampled_from(["c1", "c2", "c3", "call with space", "c\r\n1"])
_short = st.sampled_from(["", " ", "hi", "x" * 3, "line\nbreak", "\u0000nul", "😀"])
_args = st.sampled_from(["{}", "", "bad", None, '{"a": 1}', "[1]", '"s"', {"k": "v"}, "null"])
_IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
_part = st.one_of(
    st.builds(lambda t: {"type": "input_text", "text": t}, _short),
    st.builds(lambda t: {"type": "output_text", "text": t, "annotations": []}, _short),
    st.builds(lambda t: {"type": "refusal", "refusal": t}, _short),
    st.sampled_from([{"type": "input_image", "image_url": _IMAGE, "detail": "low"},
                     {"type": "input_image", "image_url": {"url": _IMAGE}},
                     {"type": "input_image", "file_id": "file_1"},
                     {"type": "input_file", "filename": "a.txt", "file_data": base64.b64encode(b"hello").decode()},
                     {"type": "input_file", "filename": "b.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                     {"type": "input_file", "file_url": "https://example.com/f.txt"},
                     {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]),
)
_content = _short | st.lists(_part, max_size=3)
_blob = st.sampled_from([SEALER.seal("earlier reasoning"), SEALER.seal(""),
                         ReasoningSealer("other").seal("FOREIGN REASONING"), "gAAAAABforeign", "mimo1:AAAA", None])
_item = st.one_of(
    st.builds(lambda r, c: {"type": "message", "role": r, "content": c},
              st.sampled_from(["user", "user", "assistant", "system", "developer"]), _content),
    st.builds(lambda r, c: {"role": r, "content": c}, st.sampled_from(["user", "assistant"]), _content),
    st.builds(lambda b, s: {"type": "reasoning", "summary": [{"type": "summary_text", "text": s}],
                            "encrypted_content": b}, _blob, _short),
    st.builds(lambda t: {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": t}]},
              _short),
    st.builds(lambda i, n, a, ns: {"type": "function_call", "call_id": i, "name": n, "arguments": a,
                                   **({"namespace": ns} if ns else {})}, _ids, _names, _args, _namespaces),
    st.builds(lambda i, o: {"type": "function_call_output", "call_id": i, "output": o}, _ids,
              _short | st.lists(_part, max_size=2) | st.just({"content": "x", "success": True}) | st.none()),
    st.builds(lambda i, n, x: {"type": "custom_tool_call", "call_id": i, "name": n, "input": x}, _ids, _names, _short),
    st.builds(lambda i, o: {"type": "custom_tool_call_output", "call_id": i, "output": o}, _ids, _short),
    st.builds(lambda i, c: {"type": "local_shell_call", "call_id": i, "status": "completed",
                            "action": {"type": "exec", "command": c, "working_directory": "/tmp", "timeout_ms": 5}},
              _ids, st.sampled_from([["ls", "-la"], [], None, "ls"])),
    st.builds(lambda i: {"type": "local_shell_call_output", "id": i, "output": "ok"}, _ids),
    st.builds(lambda i, a: {"type": "tool_search_call", "call_id": i, "arguments": a, "execution": "client"},
              _ids | st.none(), _args),
    st.builds(lambda i, n: {"type": "tool_search_output", "call_id": i, "execution": "client",
                            "tools": [{"type": "function", "name": n}, {"type": "namespace", "name": "ns2",
                                                                         "tools": [{"type": "function", "name": n}]}]},
              _ids | st.none(), _names),
    st.sampled_from([{"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
                     {"type": "web_search_call", "status": "completed",
                      "action": {"type": "open_page", "url": "https://a"}},
                     {"type": "item_reference", "id": "msg_1"},
                     {"type": "compaction", "encrypted_content": SEALER.for_purpose(COMPACTION).seal("summary")},
                     {"type": "compaction", "encrypted_content": SEALER.seal("a reasoning blob")},
                     {"type": "compaction", "encrypted_content": "foreign"},
                     {"type": "file_search_call", "id": "fs_1", "queries": ["q"], "status": "completed"}]),
)
_tool = st.one_of(
    st.builds(lambda n, p, s: {"type": "function", "name": n, "parameters": p, "strict": s, "description": "d"},
              _names, st.sampled_from([None, {"type": "object", "properties": {}}, {"type": "object"}]),
              st.sampled_from([None, True, False])),
    st.builds(lambda n, f: {"type": "custom", "name": n, "description": "edit", "format": f}, _names,
              st.sampled_from([None, {"type": "text"},
                               {"type": "grammar", "syntax": "lark", "definition": "start: x"}])),
    st.builds(lambda ns, inner: {"type": "namespace", "name": ns, "description": "d", "tools": inner},
              st.sampled_from(["ns", "mcp.server", "名"]),
              st.lists(st.builds(lambda n, k: {"type": k, "name": n}, _names, st.sampled_from(["function", "custom"])),
                       max_size=3)),
    st.sampled_from([{"type": "local_shell"}, {"type": "tool_search", "execution": "client"},
                     {"type": "tool_search", "execution": "server"}, {"type": "web_search"},
                     {"type": "web_search_preview", "user_location": {"type": "approximate", "city": "Oslo"}},
                     {"type": "web_search_2025_08_26"}, {"type": "code_interpreter", "container": {"type": "auto"}},
                     {"type": "file_search", "vector_store_ids": ["vs"]}, {"type": "image_generation"},
                     {"type": "computer_use_preview", "display_width": 1, "display_height": 1, "environment": "linux"},
                     {"type": "mcp", "server_label": "s", "server_url": "https://m"}]),
)
_choice = st.one_of(
    st.sampled_from([None, "auto", "none", "required", {"type": "web_search_preview"}, {"type": "file_search"},
                     {"type": "mcp", "server_label": "s"}, {"type": "local_shell"}]),
    st.builds(lambda k, n, ns: {"type": k, "name": n, **({"namespace": ns} if ns else {})},
              st.sampled_from(["function", "custom"]), _names, _namespaces),
    st.builds(lambda m, tools: {"type": "allowed_tools", "mode": m, "tools": tools},
              st.sampled_from(["auto", "required"]),
              st.lists(st.one_of(st.builds(lambda n: {"type": "function", "name": n}, _names),
                                 st.builds(lambda n: {"type": "custom", "name": n}, _names),
                                 st.sampled_from([{"type": "namespace", "name": "ns"}, {"type": "web_search"},
                                                  {"type": "local_shell"}, {"type": "tool_search"}])), max_size=3)),
)
_format = st.sampled_from([None, {"type": "text"}, {"type": "json_object"},
                           {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}])
_request = st.fixed_dictionaries(
    {"model": st.just("gpt-5.5"), "input": _short | st.lists(_item, min_size=1, max_size=8)},
    optional={
        "instructions": _short | st.lists(st.sampled_from(["be brief", {"type": "input_text", "text": "x"},
                                                           {"role": "developer", "content": "dev"}]), max_size=2),
        "tools": st.lists(_tool, max_size=5),
        "tool_choice": _choice,
        "parallel_tool_calls": st.booleans(),
        "reasoning": st.sampled_from([None, {}, {"effort": "none"}, {"effort": "minimal"}, {"effort": "medium"},
                                      {"effort": "xhigh"}, {"effort": "high", "summary": "auto"}]),
        "text": st.builds(lambda f, v: {"format": f, "verbosity": v} if f else {"verbosity": v}, _format,
                          st.sampled_from(["low", "medium"])),
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
        "frequency_penalty": st.floats(-2, 2), "presence_penalty": st.floats(-2, 2),
        "max_output_tokens": st.integers(1, 200_000),
        "include": st.sampled_from([[], ["reasoning.encrypted_content"]]),
        "store": st.booleans(), "stream": st.booleans(), "metadata": st.just({"k": "v"}),
        "prompt_cache_key": st.just("pck"), "user": st.just("u"), "truncation": st.just("auto"),
    },
)
HOST_MODELS = frozenset(DEFAULT_MODELS) | {"mimo-v2-flash"}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_request, st.sampled_from(sorted(HOST_MODELS)), st.booleans(), st.booleans())
def test_any_responses_request_becomes_a_body_mimo_accepts_or_a_400(body, model, native, drop):
    original = copy.deepcopy(body)
    try:
        translation = chat_request_from_responses(body, upstream_model=model, sealer=SEALER,
                                                  native_web_search=native, drop_unsupported_tools=drop)
    except OpenAIError as err:
        assert err.status == 400 and err.type == "invalid_request_error" and err.message
        return
    assert body == original  # the client's body is not modified
    sent = orjson.loads(orjson.dumps(translation.body))  # what goes over the wire
    rejection = validate(sent, Host(models=HOST_MODELS, web_search_plugin=native))
    assert rejection is None, (rejection.status, rejection.body)
    assert "FOREIGN REASONING" not in json.dumps(sent)  # only blobs this gateway sealed are restored
    for message in sent["messages"]:
        for call in message.get("tool_calls") or ():
            assert call["function"]["name"] in translation.tool_map


_nasty = st.text(alphabet=st.sampled_from(["a", "\n", "\r", "\x1b", "\x00", "\u2028", "\u0085", " ", "é"]),
                 min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_nasty, st.just(1), min_size=1, max_size=3), _nasty, st.booleans())
def test_translator_warnings_are_single_printable_lines(fields, kind, chat):
    """Warnings are logged: client-chosen names in them must not start a new log line."""
    if chat:
        body = {"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}], **fields,
                "tools": [{"type": kind, "name": "t"}]}
        warnings = chat_request_from_chat(body, upstream_model=UPSTREAM_MODEL).warnings
    else:
        body = {"model": "gpt-5.5", "input": "hi", **fields, "tools": [{"type": kind, "name": "t"}]}
        try:
            warnings = chat_request_from_responses(body, upstream_model=UPSTREAM_MODEL, sealer=SEALER,
                                                   drop_unsupported_tools=True).warnings
        except OpenAIError:
            return
    assert warnings and all(w.isprintable() for w in warnings), warnings
