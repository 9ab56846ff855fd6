"""Remote compaction (pure): a Responses request whose `input` ends with `compaction_trigger`
is answered with exactly one `compaction` item whose sealed `encrypted_content` is a handoff
summary MiMo writes. A later request carries the item back in `input`, and `_items` expands it
into that summary in its place.

- `wants_compaction(body)`: whether the request asks for a compaction.
- `summary_request(body, ...)`: the MiMo request asking for the summary.
- `CompactionStream`: MiMo's chunks -> Responses events with the one item (or `response.failed`).
- `compacted_response(body, response)`: the reply of the older `POST /v1/responses/compact`.

How the history reaches MiMo: rendered as one bounded transcript in one user message, after
a system message stating the job, rather than as the translated chat messages. The model
then reads the conversation as material to summarise instead of a conversation to continue
(asked after a replayed conversation, models tend to carry on with the task); no tools are
declared, so it cannot call any, and no tool-call pairing or reasoning pass-back rule applies,
so no history shape can make MiMo refuse it. The transcript is bounded: every entry has a cap
by kind (long tool outputs and instructions are cut in the middle, keeping both ends), and past
the total cap the middle of the conversation is left out whole entries at a time, keeping its
start (where the goal is stated) and its end (the current state). The price is MiMo's prompt
cache: the transcript shares no prefix with the turns before it.

The history is parsed with the same item translator as every request (`_items`), so what is
valid there is valid here, and an earlier `compaction` item (a second compaction) becomes the
summary it holds: the new summary carries it over.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeGuard

from .. import _json
from .._seal import COMPACTION, ReasoningSealer
from . import _response_object as ro
from ._content import Ctx
from ._events import ResponseEvents, first_choice
from ._items import COMPACTED, COMPACTED_ELSEWHERE, input_messages
from ._tooldefs import ToolNames
from .errors import OpenAIError, from_stream_error, invalid_request, stream_truncated
from .responses_request import ResponsesTranslation

__all__ = [
    "SUMMARY_SYSTEM", "SUMMARY_TASK", "TRIGGER", "CompactionStream", "compacted_response", "summary_request",
    "wants_compaction",
]

TRIGGER = "compaction_trigger"
SUMMARY_TOKENS = 8192  # about three times the asked-for length: a summary is never cut for being thorough
TRANSCRIPT_CHARS = 300_000  # ~100k tokens of English or code; well inside every MiMo model's context
CUT_NOTE = "\n\n[The summary was cut here: it reached its length limit.]"

SUMMARY_SYSTEM = (
    "You write handoff summaries for a coding agent. Its conversation with a user has grown too long, and its "
    "older turns are about to be replaced by your summary. The model that continues the work will see the "
    "system and developer instructions, the user's own messages (perhaps not all of them), your summary and the "
    "workspace as it is now. It will not see the assistant's earlier answers, its tool calls or their outputs, "
    "or any earlier summary: whatever it needs from them must be in your summary. You only write the summary: "
    "do not continue the work, do not answer the user's requests, and do not call tools."
)
SUMMARY_TASK = """Write the handoff summary of the conversation in the transcript above. Use these five \
Markdown sections, in this order:

## Goal
What the user wants, in their words where it matters: the task, its constraints and preferences, and how \
they will judge it done.
## Decisions
What was decided and why; approaches tried and dropped, and why.
## Files and commands
Files read, created or changed (full paths and what changed), commands run and what they showed (exit \
status, key output, error messages verbatim when short), and names that matter (functions, tests, branches, \
URLs, versions, ids).
## State
What is done and verified, what is half done, and what is failing or unknown right now.
## Next steps
The next actions in order, and questions still open for the user.

Write only what the transcript shows; say so where something is uncertain, and never invent results. Keep \
exact names, paths, numbers and error texts. If the transcript holds a summary of still earlier turns, carry \
over what still matters from it, because it will not be kept. Marks like [… 1234 characters cut …] show \
where the transcript was shortened. Leave out pleasantries and anything the next model does not need. Write \
in the language the user writes in. Stay under about 1,500 words."""

# Caps per transcript entry, in characters.
_CAP_INSTRUCTIONS = 3_000  # the client sends them again after the compaction
_CAP_SUMMARY = 60_000
_CAP_USER = 12_000
_CAP_ASSISTANT = 8_000
_CAP_THINKING = 3_000
_CAP_CALL = 4_000
_CAP_RESULT = 6_000
_INSTRUCTIONS = "Instructions"


def wants_compaction(body: Any) -> bool:
    """Whether this Responses body asks for a compaction: its `input` ends with the trigger."""
    return isinstance(body, dict) and _ends_with_trigger(body.get("input"))


def _ends_with_trigger(items: Any) -> TypeGuard[list[Any]]:
    return isinstance(items, list) and bool(items) and isinstance(items[-1], dict) and items[-1].get("type") == TRIGGER


# -- the request ------------------------------------------------------------------------


def summary_request(
    body: dict, *, upstream_model: str, sealer: ReasoningSealer,
    max_summary_tokens: int = SUMMARY_TOKENS, max_transcript_chars: int = TRANSCRIPT_CHARS,
) -> ResponsesTranslation:
    """The MiMo chat-completions request for the summary of `body`'s conversation: its `input`
    (a trailing `compaction_trigger` removed) and `instructions`. Raises `OpenAIError` (400) for
    invalid input, as `chat_request_from_responses` does. `previous_response_id` must already be
    resolved into `input` by the caller."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    if body.get("previous_response_id") not in (None, ""):
        raise invalid_request("'previous_response_id' must be resolved before a compaction; send the whole "
                              "conversation in 'input' instead.", param="previous_response_id",
                              code="unsupported_parameter")
    items = body.get("input")
    if _ends_with_trigger(items):
        items = items[:-1]
    if items is None:
        raise invalid_request("'input' is required.", param="input")
    warnings: list[str] = []
    ctx = Ctx(upstream_model, sealer, ToolNames(), warnings)
    messages = _instructions(body.get("instructions"), ctx) + input_messages(items, ctx, thinking=False)
    entries = _entries(messages)
    if all(label == _INSTRUCTIONS for label, _ in entries):
        raise invalid_request("There is nothing to compact: 'input' holds no conversation.", param="input")
    transcript = _render(entries, max_transcript_chars)
    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": [
            {"role": "system", "content": SUMMARY_SYSTEM},
            {"role": "user", "content": f"<transcript>\n{transcript}\n</transcript>\n\n{SUMMARY_TASK}"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": max_summary_tokens,
        "thinking": {"type": "disabled"},
    }
    try:
        _json.dumps(out)
    except (TypeError, ValueError):
        raise invalid_request("The request contains values that cannot be encoded as JSON "
                              "(integers beyond 64 bits or invalid strings).") from None
    return ResponsesTranslation(body=out, tool_map={}, include_encrypted=False, web_search=None, warnings=warnings)


def _instructions(value: Any, ctx: Ctx) -> list[dict[str, Any]]:
    """`instructions` (a string, or an array of strings and input messages) as chat messages."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [{"role": "system", "content": value}]
    if not isinstance(value, list):
        raise invalid_request("'instructions' must be a string or an array.", param="instructions")
    items = [{"role": "system", "content": v} if isinstance(v, str) else v for v in value]
    return input_messages(items, ctx, thinking=False)


# -- the transcript ---------------------------------------------------------------------


def cut_middle(text: str, limit: int) -> str:
    """`text` if it fits `limit` characters, else its two ends around a mark saying how much went."""
    if len(text) <= limit:
        return text
    keep = max(limit, 2) // 2
    return f"{text[:keep]}\n[… {len(text) - 2 * keep} characters cut …]\n{text[-keep:]}"


def _text(content: Any) -> str:
    """A chat message's content as text; images become a mark."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = [p.get("text", "") if p.get("type") == "text" else "[image]" for p in content if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def _arguments(arguments: str) -> str:
    """Call arguments for reading: a freeform tool's `{"input": ...}` unwrapped."""
    parsed = ro.parse_arguments(arguments)
    if isinstance(parsed, dict) and set(parsed) == {"input"} and isinstance(parsed["input"], str):
        return parsed["input"]
    return arguments


def _entries(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, text) for each part of the conversation worth reading, each within its cap."""
    entries: list[tuple[str, str]] = []
    names: dict[str, str] = {}  # call id -> tool name, for the results

    def add(label: str, text: str, cap: int) -> None:
        if text.strip():
            entries.append((label, cut_middle(text, cap)))

    for message in messages:
        role, text = message["role"], _text(message.get("content"))
        if role == "system":
            if text.startswith(COMPACTED):
                add("Summary of still earlier turns", text[len(COMPACTED):], _CAP_SUMMARY)
            elif text == COMPACTED_ELSEWHERE:
                add("Note", "Still earlier turns were compacted elsewhere; their summary is not available.",
                    _CAP_USER)
            else:
                add(_INSTRUCTIONS, text, _CAP_INSTRUCTIONS)
        elif role == "user":
            add("User", text, _CAP_USER)
        elif role == "tool":
            call_id = message.get("tool_call_id", "")
            add(f"Result of {names.get(call_id, 'a tool call')} ({call_id})", text, _CAP_RESULT)
        else:
            reasoning = message.get("reasoning_content")
            if isinstance(reasoning, str):
                add("Assistant (thinking)", reasoning, _CAP_THINKING)
            add("Assistant", text, _CAP_ASSISTANT)
            for call in message.get("tool_calls") or ():
                function = call["function"]
                names[call["id"]] = function["name"]
                add(f"Assistant called {function['name']} ({call['id']})",
                    _arguments(function["arguments"]) or "{}", _CAP_CALL)
    return entries


def render_transcript(messages: list[dict[str, Any]], limit: int = TRANSCRIPT_CHARS) -> str:
    """The chat messages as readable entries, at most `limit` characters: past it, the middle
    goes (whole entries), keeping up to a quarter of the budget of the start and the rest of
    the end."""
    return _render(_entries(messages), limit)


def _render(parts: list[tuple[str, str]], limit: int) -> str:
    entries = [f"### {label}\n{text}" for label, text in parts]
    sizes = [len(e) + 2 for e in entries]
    if sum(sizes) <= limit:
        return "\n\n".join(entries)
    head, used = 0, 0
    while head < len(entries) and used + sizes[head] <= limit // 4:
        used += sizes[head]
        head += 1
    tail = len(entries)
    while tail > head and used + sizes[tail - 1] <= limit:
        tail -= 1
        used += sizes[tail]
    kept_tail = entries[tail:]
    if not kept_tail and tail > head:  # the last entry alone is larger than what is left
        tail -= 1
        kept_tail = [cut_middle(entries[tail], max(limit - used, 200))]
    omitted = tail - head
    mark = [f"[… {omitted} entries of the conversation left out here …]"] if omitted else []
    return "\n\n".join([*entries[:head], *mark, *kept_tail])


# -- the stream -------------------------------------------------------------------------


class CompactionStream(ResponseEvents):
    """Feed parsed MiMo chunks in, get Responses events out: `response.created`,
    `response.in_progress`, then at the end either exactly one `compaction` item (added and
    done) and `response.completed`, or `response.failed` with no item. The summary is MiMo's
    content text (reasoning is ignored); an empty summary, a cut stream, an in-band error or
    MiMo's content filter fail the response. Nothing of the item is emitted before the end, so
    `emitted_content` stays False until the response is complete (the caller may fail over)."""

    __slots__ = ("_sealer", "_secrets", "_parts", "_finish_reason", "_item")

    def __init__(self, request: dict, *, response_id: str, model: str, sealer: ReasoningSealer,
                 created_at: int, secrets: Iterable[str] = ()) -> None:
        super().__init__(request, response_id=response_id, model=model, created_at=created_at)
        self._sealer = sealer.for_purpose(COMPACTION)
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._parts: list[str] = []
        self._finish_reason: str | None = None
        self._item: dict[str, Any] | None = None

    @property
    def emitted_content(self) -> bool:
        return self._item is not None

    def feed(self, chunk: dict) -> list[dict[str, Any]]:
        """Take one parsed chunk (or an in-band `{"error": ...}` object)."""
        if self._response is not None or not isinstance(chunk, dict):
            return []
        out = self.start()
        if chunk.get("error") is not None:
            return out + self.fail(from_stream_error(chunk, secrets=self._secrets))
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choice = first_choice(chunk.get("choices"))
        if choice is not None:
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content and self._finish_reason is None:
                self._parts.append(content)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                self._finish_reason = reason
        return out

    def forward(self, raw: bytes) -> None:
        """No parse-free path: every chunk goes through `feed`."""
        return None

    def finish(self, *, saw_done: bool) -> list[dict[str, Any]]:
        """The upstream ended: emit the item and `response.completed`, or `response.failed`."""
        if self.done:
            return []
        out = self.start()
        if self._finish_reason is None and not saw_done:
            return out + self.fail(stream_truncated("the connection closed before a finish_reason"))
        if self._finish_reason == "content_filter":
            return out + self.fail(OpenAIError(502, "MiMo's content filter stopped the compaction summary.",
                                               type="upstream_error", code="content_filter"))
        summary = "".join(self._parts).strip()
        if not summary:
            return out + self.fail(OpenAIError(502, "MiMo returned an empty compaction summary.",
                                               type="upstream_error", code="empty_response"))
        if self._finish_reason == "length":
            summary += CUT_NOTE
        self._item = item = {"type": "compaction", "id": ro.new_id("cmp"),
                             "encrypted_content": self._sealer.seal(summary)}
        self._emit("response.output_item.added", output_index=0, item=item)
        self._emit("response.output_item.done", output_index=0, item=item)
        self._terminate("response.completed", "completed", [item])
        return out + self._flush()

    def fail(self, error: OpenAIError) -> list[dict[str, Any]]:
        """`response.failed` carrying the error, with no item."""
        if self.done:
            return []
        out = self.start()
        self._terminate("response.failed", "failed", [], error=error.response_error())
        return out + self._flush()


# -- the older endpoint -----------------------------------------------------------------


def compacted_response(body: dict, response: dict[str, Any]) -> dict[str, Any]:
    """The `POST /v1/responses/compact` reply for a completed compaction `response`: the
    request's user messages as sent, then its one `compaction` item (clients before remote
    compaction v2 replace their history with `output`)."""
    return {
        "id": response["id"],
        "object": "response.compaction",
        "created_at": response["created_at"],
        "output": [*kept_items(body), *response["output"]],
        "usage": response["usage"],
    }


def kept_items(body: Any) -> list[dict[str, Any]]:
    """The user messages of a compacted request's `input`, as sent: what a compacted history
    keeps ahead of its `compaction` item."""
    items = body.get("input") if isinstance(body, dict) else None
    if isinstance(items, str) and items:
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": items}]}]
    return [item for item in items if _is_user_message(item)] if isinstance(items, list) else []


def _is_user_message(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") == "user"

