"""The recorded MiMo stream every benchmark replays (deterministic: same bytes on every run).

One Codex-like turn rendered by `mimo_asgi.testing`'s own renderer (MiMo's chunk shapes and
order): reasoning, then text, then a `shell` function call and an `apply_patch` custom-tool call
whose arguments stream in fragments, then the finish chunk, the usage chunk and `[DONE]`.
Deltas carry 4 characters (about one token, as MiMo streams). The SSE bytes are then cut into
"reads" the way a socket delivers them: mostly one event per read, one read in five cut at a
random point inside the next event (seeded), so the SSE decoder sees misaligned boundaries.
"""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from typing import Any

from mimo_asgi.testing import Answer, ToolCall, Usage
from mimo_asgi.testing import _render

CLIENT_MODEL = "gpt-5.5"
UPSTREAM_MODEL = "mimo-v2.5-pro"
CHUNK_CHARS = 4
SEED = 20240607

_WORDS = ("the", "patch", "function", "returns", "a", "list", "of", "events", "so", "we", "need", "to",
          "check", "whether", "stream", "closes", "after", "reasoning", "and", "tool", "call", "arguments",
          "are", "complete", "before", "writing", "output", "item", "done", "with", "its", "index", "file")


def _prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def _patch(rng: random.Random, lines: int) -> str:
    body = "\n".join(f"+    {_prose(rng, 48)}" for _ in range(lines))
    return f"*** Begin Patch\n*** Update File: src/app.py\n@@ def handler():\n{body}\n*** End Patch\n"


@dataclass(frozen=True)
class Recorded:
    """One recorded upstream stream and the client request that produced it."""

    responses_request: dict[str, Any]  # what Codex sent (Responses API)
    chat_request: dict[str, Any]  # a Chat Completions client's equivalent request
    events: tuple[bytes, ...]  # each SSE event as MiMo framed it
    reads: tuple[bytes, ...]  # the same bytes cut at socket-read boundaries
    chunks: int  # upstream chat.completion.chunk objects (excluding [DONE])

    @property
    def body(self) -> bytes:
        return b"".join(self.events)


def responses_request(stream: bool = True) -> dict[str, Any]:
    """A Codex-like Responses request with a function tool and a custom (apply_patch) tool."""
    return {
        "model": CLIENT_MODEL,
        "instructions": "You are a coding agent. " * 20,
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "Fix the failing test in src/app.py. " * 10}]}],
        "tools": [
            {"type": "function", "name": "shell", "description": "Run a shell command.",
             "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}},
                                                              "workdir": {"type": "string"}},
                            "required": ["command"]}},
            {"type": "custom", "name": "apply_patch", "description": "Apply a patch to files.",
             "format": {"type": "text"}},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": stream,
        "include": ["reasoning.encrypted_content"],
    }


def long_responses_request(turns: int = 60) -> dict[str, Any]:
    """`responses_request()` after `turns` earlier tool-using turns (~1.9 KB each), as Codex
    resends the whole history every turn: about 114 KB of JSON for 60 turns."""
    request = responses_request()
    history: list[dict[str, Any]] = []
    for i in range(turns):
        history += [
            {"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": f"step {i}: " + "please look at src/module.py and fix it " * 20}]},
            {"type": "function_call", "call_id": f"call_{i}", "name": "shell",
             "arguments": json.dumps({"command": ["bash", "-lc", "cat src/module.py"]})},
            {"type": "function_call_output", "call_id": f"call_{i}", "output": "def f():\n    return 1\n" * 30},
        ]
    request["input"] = history + request["input"]
    return request


def chat_request(stream: bool = True) -> dict[str, Any]:
    return {
        "model": CLIENT_MODEL,
        "messages": [{"role": "system", "content": "You are a coding agent. " * 20},
                     {"role": "user", "content": "Fix the failing test in src/app.py. " * 10}],
        "tools": [{"type": "function", "function": {"name": "shell", "description": "Run a shell command.",
                                                    "parameters": {"type": "object",
                                                                   "properties": {"command": {"type": "array"}}}}}],
        "stream": stream,
        "stream_options": {"include_usage": True},
    }


def _split(events: list[bytes], rng: random.Random) -> list[bytes]:
    data = b"".join(events)
    ends, pos = [], 0
    for event in events:
        pos += len(event)
        ends.append(pos)
    reads, start = [], 0
    for i, end in enumerate(ends):
        if end <= start:
            continue
        if rng.random() < 0.2 and i + 1 < len(ends):
            cut = rng.randint(end + 1, ends[i + 1] - 1)  # mid-way into the next event
        else:
            cut = end
        reads.append(data[start:cut])
        start = cut
    if start < len(data):
        reads.append(data[start:])
    return reads


@functools.cache
def recorded(target_chunks: int = 2400) -> Recorded:
    """The recorded stream, about `target_chunks` upstream chunks long (default 2,400)."""
    rng = random.Random(SEED)
    share = max(target_chunks // 8, 1)  # reasoning 3/8, text 3/8, shell 1/8, apply_patch 1/8
    shell_args = json.dumps({"command": ["bash", "-lc", "pytest -q " + _prose(rng, 4 * share - 40)],
                             "workdir": "/repo"}, separators=(",", ":"))
    patch = _patch(rng, max(1, (4 * share - 120) // 54))
    answer = Answer(
        reasoning=_prose(rng, 3 * share * CHUNK_CHARS),
        text=_prose(rng, 3 * share * CHUNK_CHARS),
        tool_calls=(ToolCall("shell", shell_args, id="call_shell0000000000000001"),
                    ToolCall("apply_patch", json.dumps({"input": patch}), id="call_patch0000000000000002")),
        usage=Usage(prompt_tokens=1800, cached_tokens=1024),
        chunk_size=CHUNK_CHARS,
    )
    turn = _render.Turn(id="0" * 31 + "1", created=1_764_000_000, model=UPSTREAM_MODEL,
                        thinking=True, include_usage=True)
    usage = _render.usage(answer, {}, True, 8000)
    events = _render.sse_events(answer, turn, usage)
    reads = _split(events, rng)
    return Recorded(responses_request(), chat_request(), tuple(events), tuple(reads), len(events) - 1)
