"""Responses `input` items -> MiMo chat messages (pure).

Guarantees on the messages produced (each keeps one of MiMo's message rules, docs/mimo.md):
- consecutive assistant-side items (text, reasoning, tool calls, web-search notes) form ONE
  assistant message; its `content` is a string or absent, never null;
- every tool call is followed directly by exactly one `tool` message with string content:
  the client's output wherever it sat in the history, else a "no output was recorded" note;
- an output whose call is absent is kept as a user message, never dropped;
- replayed arguments are JSON objects (`"{}"` when empty or invalid);
- `reasoning_content` only comes from blobs this gateway sealed (or a plain summary when
  no blob exists); with thinking on, a tool-call turn without it gets a placeholder;
- `item_reference` items are skipped (there is no store to resolve them); if that leaves
  an output without its call, the output becomes user text like any orphan;
- a `compaction` item becomes, in its place, a system message holding the summary this gateway
  sealed into it, framed as earlier context (a system message, not a user one, so MiMo does
  not take it for a new request; Codex puts the item last, so the conversation then ends with
  that system message, which none of MiMo's documented message rules forbids). A blob that does not open (another gateway's, OpenAI's, tampered,
  sealed with a retired key) is dropped with a warning and a short note stands in its place:
  refusing it would end the session for good, and the user's messages kept beside it still
  carry the task;
- `compaction_trigger` asks for a compaction and is only valid last (the caller routes those
  requests to compaction); met here, it is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .._seal import COMPACTION
from ._content import Ctx, chat_parts, output_text, parts_text, safe_dumps
from ._tooldefs import load_tools
from .errors import OpenAIError, invalid_request

PLACEHOLDER_REASONING = "(this turn ran without thinking mode)"
NO_OUTPUT = "No output was recorded for this tool call."
COMPACTED = ("Earlier turns of this conversation were compacted into the summary below. It is context, not a "
             "new request: it records what was asked, done and decided in the turns no longer shown. Continue "
             "the user's task from where it leaves off.\n\n")
COMPACTED_ELSEWHERE = ("Earlier turns of this conversation were compacted by another service, and that summary "
                       "cannot be read here, so they are missing. Continue the user's task from the messages shown "
                       "and from what can be checked in the current state of the work.")
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_UNSUPPORTED_ITEMS = {
    "file_search_call", "computer_call", "computer_call_output", "code_interpreter_call",
    "image_generation_call", "mcp_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response",
}


@dataclass(slots=True)
class _Msg:
    message: dict[str, Any]


@dataclass(slots=True)
class _Said:  # assistant-side text (answer, refusal, or a note of a hosted action)
    text: str


@dataclass(slots=True)
class _Reasoning:
    text: str | None


@dataclass(slots=True)
class _Call:
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class _Output:
    call_id: str | None
    text: str
    images: list[dict[str, Any]] = field(default_factory=list)


_Record = _Msg | _Said | _Reasoning | _Call | _Output


def _str(item: dict[str, Any], key: str, param: str, *, required: bool = False) -> str | None:
    value = item.get(key)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return None
    raise invalid_request(f"'{key}' must be a {'non-empty ' if required else ''}string.", param=f"{param}.{key}")


def _arguments(value: Any) -> str:
    """A JSON object text: the original when valid, else `"{}"`."""
    if isinstance(value, dict):
        return safe_dumps(value)
    if not isinstance(value, str) or not value.strip():
        return "{}"
    try:
        return value if isinstance(_json.loads(value), dict) else "{}"
    except ValueError:
        return "{}"


def _call_id(item: dict[str, Any], param: str) -> str:
    """`call_id`, or `id` for the shell items that predate it."""
    for key in ("call_id", "id"):
        if isinstance(item.get(key), str) and item[key]:
            return item[key]
    raise invalid_request("'call_id' must be a non-empty string.", param=f"{param}.call_id")


def _message(item: dict[str, Any], param: str, ctx: Ctx) -> _Record | None:
    role = item.get("role")
    role = _ROLES.get(role) if isinstance(role, str) else None
    if role is None:
        raise invalid_request("'role' must be one of user, system, developer, assistant.", param=f"{param}.role")
    parts = chat_parts(item.get("content"), role, f"{param}.content", ctx)
    if role == "assistant":
        text = parts_text(parts)
        return _Said(text) if text else None
    if role == "user" and any(p["type"] != "text" for p in parts):  # images, audio
        if not any(p["type"] == "text" for p in parts):  # text parts are never empty
            parts.insert(0, {"type": "text", "text": " "})  # MiMo: media messages need a text part
        return _Msg({"role": "user", "content": parts})
    text = parts_text(parts)
    return _Msg({"role": role, "content": text}) if text else None


def _reasoning(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    blob = _str(item, "encrypted_content", param)
    if blob:
        text = ctx.sealer.unseal(blob)
        if text is None:  # foreign or tampered: never replayed, and no summary stands in
            ctx.warnings.append("dropped reasoning whose encrypted_content was not issued by this gateway")
        return _Reasoning(text)
    for key, kinds in (("content", ("reasoning_text", "text")), ("summary", ("summary_text",))):
        parts = item.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise invalid_request(f"'{key}' must be an array.", param=f"{param}.{key}")
        texts = [p["text"] for p in parts
                 if isinstance(p, dict) and p.get("type") in kinds and isinstance(p.get("text"), str)]
        if any(texts):
            return _Reasoning("\n\n".join(t for t in texts if t))
    return _Reasoning(None)


def _function_call(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    call_id = _str(item, "call_id", param, required=True)
    name = _str(item, "name", param, required=True)
    namespace = _str(item, "namespace", param) or None
    upstream = ctx.names.function(name, namespace)  # type: ignore[arg-type]
    return _Call(call_id, upstream, _arguments(item.get("arguments")))  # type: ignore[arg-type]


def _custom_call(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    call_id = _str(item, "call_id", param, required=True)
    name = _str(item, "name", param, required=True)
    namespace = _str(item, "namespace", param) or None
    raw = _str(item, "input", param) or ""
    upstream = ctx.names.function(name, namespace, "custom")  # type: ignore[arg-type]
    return _Call(call_id, upstream, safe_dumps({"input": raw}))  # type: ignore[arg-type]


def _local_shell_call(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    action = item.get("action")
    if not isinstance(action, dict):
        raise invalid_request("'action' must be an object.", param=f"{param}.action")
    command = action.get("command")
    args: dict[str, Any] = {"command": [str(c) for c in command] if isinstance(command, list) else []}
    if isinstance(action.get("working_directory"), str):
        args["workdir"] = action["working_directory"]
    if isinstance(action.get("timeout_ms"), int) and not isinstance(action["timeout_ms"], bool):
        args["timeout_ms"] = action["timeout_ms"]
    return _Call(_call_id(item, param), ctx.names.local_shell(), safe_dumps(args))


def _tool_search_call(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    arguments = _arguments(item.get("arguments"))
    call_id = _str(item, "call_id", param)
    if not call_id:  # server-executed search: nothing to answer, keep it as context
        return _Said(f"(searched for tools: {arguments})")
    return _Call(call_id, ctx.names.tool_search(), arguments)


def _web_search_call(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    action = item.get("action")
    if not isinstance(action, dict):
        action = {}
    kind, url = action.get("type"), action.get("url")
    if kind == "open_page" and isinstance(url, str):
        return _Said(f"(opened web page: {url})")
    if kind == "find_in_page" and isinstance(url, str):
        pattern = action.get("pattern") if isinstance(action.get("pattern"), str) else ""
        return _Said(f"(searched {url} for: {pattern})")
    more = action.get("queries")
    if not isinstance(more, list):
        more = []
    queries = [q for q in (action.get("query"), *more) if isinstance(q, str) and q]
    if queries:
        return _Said(f"(searched the web for: {'; '.join(dict.fromkeys(queries))})")
    return _Said("(searched the web)")


def _output(item: dict[str, Any], param: str, ctx: Ctx, *, shell_ids: bool = False) -> _Record:
    call_id = _call_id(item, param) if shell_ids else _str(item, "call_id", param, required=True)
    text, images = output_text(item.get("output"), f"{param}.output", ctx)
    return _Output(call_id, text, images)


def _tool_search_output(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    loaded = load_tools(item.get("tools"), ctx.names, ctx.warnings)
    ctx.loaded.extend(loaded)
    if loaded:
        names = ", ".join(e.upstream or "" for e in loaded)
        text = f"The following tools are now available to call: {names}."
    else:
        text = safe_dumps(item.get("tools")) if item.get("tools") else "No matching tools were found."
    return _Output(_str(item, "call_id", param) or None, text)


def _compaction(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    summary = ctx.sealer.for_purpose(COMPACTION).unseal(item.get("encrypted_content"))
    if summary is None:
        ctx.warnings.append("dropped a compaction item whose encrypted_content was not issued by this gateway")
        return _Msg({"role": "system", "content": COMPACTED_ELSEWHERE})
    return _Msg({"role": "system", "content": COMPACTED + summary})


def _compaction_trigger(item: dict[str, Any], param: str, ctx: Ctx) -> _Record:
    raise invalid_request("Input item type 'compaction_trigger' is only accepted as the last input item.",
                          param=f"{param}.type", code="unsupported_input_item")


def _unresolvable(param: str) -> _Record:
    """The translator gets input whose references were resolved (`resolve_references`)."""
    raise invalid_request("An item_reference cannot be resolved here; send the item itself.", param=param,
                          code="unsupported_input_item")


def _unresolved(item: dict[str, Any], param: str) -> None:
    raise OpenAIError(404, f"Item with id '{str(item.get('id'))[:100]}' not found in this conversation; send the "
                      "item itself, or continue the response that holds it with previous_response_id.",
                      param=param, code="item_not_found")


def resolve_references(items: list[Any], stored: Mapping[str, Any] | None = None) -> list[Any]:
    """`items` with each `item_reference` replaced by the item of that id found before it (a
    conversation rebuilt from stored responses, or kept by a connection, holds their items with
    their ids), else in `stored` (items looked up in the store by id). Raises 404 naming a
    reference that nothing answers."""
    by_id: dict[str, Any] = dict(stored or {})
    out: list[Any] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            found = by_id.get(item.get("id"))  # type: ignore[arg-type]
            if found is None:
                _unresolved(item, f"input[{i}]")
            out.append(found)
            continue
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            by_id[item["id"]] = item
        out.append(item)
    return out


def referenced(items: Any) -> list[str]:
    """The ids `item_reference` items of `items` name."""
    if not isinstance(items, list):
        return []
    return [i["id"] for i in items if isinstance(i, dict) and i.get("type") == "item_reference"
            and isinstance(i.get("id"), str)]


_PARSERS: dict[str, Callable[[dict[str, Any], str, Ctx], _Record | None]] = {
    "message": _message,
    "reasoning": _reasoning,
    "function_call": _function_call,
    "custom_tool_call": _custom_call,
    "local_shell_call": _local_shell_call,
    "tool_search_call": _tool_search_call,
    "web_search_call": _web_search_call,
    "function_call_output": _output,
    "custom_tool_call_output": _output,
    "local_shell_call_output": lambda item, param, ctx: _output(item, param, ctx, shell_ids=True),
    "tool_search_output": _tool_search_output,
    "compaction": _compaction,
    "compaction_summary": _compaction,
    "compaction_trigger": _compaction_trigger,
    "item_reference": lambda item, param, ctx: _unresolvable(param),
}


def _parse(item: Any, param: str, ctx: Ctx) -> _Record | None:
    if not isinstance(item, dict):
        raise invalid_request("Each input item must be an object.", param=param)
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        raise invalid_request("Input item 'type' must be a string.", param=f"{param}.type")
    parser = _PARSERS.get(kind)
    if parser is None:
        what = "is not supported for MiMo-routed requests" if kind in _UNSUPPORTED_ITEMS else "is unknown"
        raise invalid_request(f"Input item type '{kind}' {what}.", param=f"{param}.type",
                              code="unsupported_input_item")
    return parser(item, param, ctx)


@dataclass(slots=True)
class _Assembler:
    """Builds the message list; the open assistant turn is flushed on any non-assistant item."""

    thinking: bool
    outputs: dict[str, _Output]
    messages: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)

    def flush(self) -> None:
        if self.texts or self.calls:  # a reasoning-only turn has nothing MiMo needs
            message: dict[str, Any] = {"role": "assistant"}
            if self.texts:
                message["content"] = "\n\n".join(self.texts)
            reasoning = "".join(self.reasoning)
            if reasoning:
                message["reasoning_content"] = reasoning
            elif self.thinking and self.calls:
                message["reasoning_content"] = PLACEHOLDER_REASONING
            if self.calls:
                message["tool_calls"] = [
                    {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in self.calls
                ]
            self.messages.append(message)
            self._answer_calls()
        self.texts, self.reasoning, self.calls = [], [], []

    def _answer_calls(self) -> None:
        images: list[dict[str, Any]] = []
        for call in self.calls:
            out = self.outputs.get(call.call_id)
            self.messages.append({"role": "tool", "tool_call_id": call.call_id,
                                  "content": out.text if out else NO_OUTPUT})
            images.extend(out.images if out else ())
        if images:  # tool messages are text-only; a vision model sees the images right after
            self.messages.append({"role": "user", "content": [
                {"type": "text", "text": "Images returned by the tool calls above:"}, *images]})

    def orphan(self, out: _Output) -> None:
        self.flush()
        label = f"Output of tool call {out.call_id}:" if out.call_id else "Output of a tool call:"
        text = f"{label}\n{out.text}"
        content: str | list[dict[str, Any]] = [{"type": "text", "text": text}, *out.images] if out.images else text
        self.messages.append({"role": "user", "content": content})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What translating a conversation's items left for the same conversation grown by more
    items. The messages of its first `count` items are final whatever follows (no assistant turn
    is open there, every call there has its output there), as long as no later call takes the id
    of an output left unanswered there (`orphans`: then `CannotContinue`). The items after them,
    up to `parsed`, are kept parsed (`pending`), so no item is ever parsed twice (parsing names
    tools). `last` is the last item parsed, by which the same conversation is recognised."""

    count: int
    parsed: int
    last: Any
    messages: list[dict[str, Any]]
    pending: tuple[tuple[int, _Record], ...]
    call_ids: frozenset[str]
    orphans: frozenset[str]

    def fits(self, value: list[Any]) -> bool:
        return self.parsed <= len(value) and (self.parsed == 0 or value[self.parsed - 1] is self.last)


class CannotContinue(Exception):
    """The new items change what was final at a checkpoint: translate from scratch."""


def input_messages(value: Any, ctx: Ctx, *, thinking: bool) -> list[dict[str, Any]]:
    """The chat messages for the request's `input` (a string or a list of items)."""
    return translate_items(value, ctx, thinking=thinking)[0]


def translate_items(value: Any, ctx: Ctx, *, thinking: bool,
                    since: Checkpoint | None = None) -> tuple[list[dict[str, Any]], Checkpoint | None]:
    """`input_messages`, and a `Checkpoint` of `value` (None for a string). With `since`, a
    checkpoint of the same conversation (`since.fits(value)`; `ctx` the one it was made with),
    only the items after it are parsed and assembled: a conversation that grows by a few items a
    turn costs those items, and gives the messages a translation from scratch gives. Raises
    `CannotContinue` when it cannot."""
    if isinstance(value, str):
        return ([{"role": "user", "content": value}] if value else []), None
    if not isinstance(value, list):
        raise invalid_request("'input' must be a string or an array of input items.", param="input")
    if since is not None and not since.fits(value):
        raise CannotContinue
    start = since.parsed if since is not None else 0
    records = [*(since.pending if since is not None else ()),
               *((i, r) for i in range(start, len(value)) if (r := _parse(value[i], f"input[{i}]", ctx)) is not None)]
    call_ids = {r.call_id for _, r in records if isinstance(r, _Call)}
    answered: frozenset[str] = frozenset()  # calls before the checkpoint: every later output of theirs is an orphan
    if since is not None:
        if call_ids & since.orphans:  # a call answers an output left unanswered before the checkpoint
            raise CannotContinue
        answered = since.call_ids
    outputs: dict[str, _Output] = {}
    placed: dict[int, str] = {}  # id() of each output placed with its call -> the call's id
    for _, r in records:
        if isinstance(r, _Output) and r.call_id in call_ids and r.call_id not in answered and r.call_id not in outputs:
            outputs[r.call_id] = r
            placed[id(r)] = r.call_id
    asm = _Assembler(thinking, outputs, list(since.messages) if since is not None else [])
    seen = list(answered)  # call ids in order; a checkpoint keeps how many it saw
    seen_set = set(answered)
    orphans = list(since.orphans) if since is not None else []
    unanswered: set[str] = set()  # calls made whose output comes later in `value`
    early: set[str] = set()  # outputs placed with a call that comes later in `value`
    blocked = False  # a call without an output got a note: a later output would change it
    closed = (since.count, len(asm.messages), len(seen), len(orphans)) if since is not None else (0, 0, 0, 0)
    for i, r in records:
        if isinstance(r, _Msg):
            asm.flush()
            asm.messages.append(r.message)
        elif isinstance(r, _Said):
            asm.texts.append(r.text)
        elif isinstance(r, _Reasoning):
            if r.text:
                asm.reasoning.append(r.text)
        elif isinstance(r, _Call):
            if r.call_id in seen_set:
                ctx.warnings.append("dropped a repeated tool call with an already used call_id")
                continue
            seen.append(r.call_id)
            seen_set.add(r.call_id)
            asm.calls.append(r)
            if r.call_id in early:
                early.discard(r.call_id)
            elif r.call_id in outputs:
                unanswered.add(r.call_id)
            else:
                blocked = True
        elif id(r) not in placed:
            asm.orphan(r)
            if r.call_id:
                orphans.append(r.call_id)
        else:
            call_id = placed[id(r)]
            if call_id in unanswered:
                unanswered.discard(call_id)
            elif call_id not in seen_set:
                early.add(call_id)
            if any(c.call_id == call_id for c in asm.calls):
                asm.flush()  # the output marks the end of the turn that made the call
        if not (blocked or unanswered or early or asm.texts or asm.reasoning or asm.calls):
            closed = (i + 1, len(asm.messages), len(seen), len(orphans))
    count, messages, calls, left = closed
    checkpoint = Checkpoint(count, len(value), value[-1] if value else None, asm.messages[:messages],
                            tuple((i, r) for i, r in records if i >= count), frozenset(seen[:calls]),
                            frozenset(orphans[:left]))
    asm.flush()
    return asm.messages, checkpoint
