"""Responses request body -> MiMo chat-completions request body (pure).

The output always streams (`stream: true` + usage) and carries only fields MiMo accepts.
Invalid input raises `OpenAIError` 400 with `param` naming the field. MiMo's rules (thinking,
effort, sampling, the token cap, tool_choice, the lines added to the prompt, web search) are
in `_mimo`; this module reads the Responses shapes.

Field mapping:
- `instructions` (string or array form), `system` and `developer` messages -> `system`
  messages, in order; `input` items -> messages (see `_items`).
- `max_output_tokens` -> `max_completion_tokens` (capped); `temperature`, `top_p`,
  `frequency_penalty`, `presence_penalty`, `stop` as `_mimo.sampling` says.
- `reasoning.effort` -> `thinking` and `reasoning_effort` as `_mimo.effort` says.
- `text.format`: json_object -> `response_format: json_object`; json_schema -> json_object
  plus a system line carrying the schema.
- `tools` -> `_tooldefs`; `tool_choice` -> `_mimo.select_tools`.
- `previous_response_id`, `conversation`, `background: true` and stored `prompt`s cannot be
  served without a store: 400. Fields with no MiMo place (`user`, `metadata`, `store`,
  `include`, `prompt_cache_key`, `text.verbosity`, ...) are accepted and not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _json
from .._seal import ReasoningSealer
from . import _mimo
from ._content import Ctx, chat_parts, parts_text
from ._items import CannotContinue, Checkpoint, translate_items
from ._mimo import MUST_CALL_ANY
from ._tooldefs import DeclaredTools, ToolNames, declare_tools
from ._tools import Entry, ToolSpec
from .errors import invalid_request

__all__ = ["MUST_CALL_ANY", "Continuation", "ResponsesTranslation", "chat_request_from_responses"]

_ACCEPTED = {
    "model", "stream", "user", "metadata", "store", "include", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "service_tier", "truncation", "client_metadata", "max_tool_calls", "top_logprobs",
    "stream_options", "previous_response_id", "background", "conversation", "prompt",
    "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p",
    "max_output_tokens", "text", "reasoning", "frequency_penalty", "presence_penalty", "stop",
}


@dataclass(frozen=True, slots=True)
class Continuation:
    """What a translation keeps so that the next request of the same conversation (the same
    settings, its input the same items and more: a WebSocket connection's next frame) translates
    and encodes only what is new: its tool names and declarations, the checkpoint of its items,
    and the JSON of the MiMo messages that checkpoint fixes (`encoded`, `fixed` of them)."""

    settings: dict[str, Any]  # the request's fields the translation of its input depends on
    key: tuple[str, bool, bool, int]  # upstream model, native web search, drop unsupported tools, sealer
    names: ToolNames
    declared: DeclaredTools
    loaded: list[Entry]
    checkpoint: Checkpoint | None
    lines: tuple[str | None, ...]  # the lines we add to the prompt (they are among the fixed messages)
    fixed: int
    encoded: tuple[bytes, ...]  # the JSON of the first `fixed` MiMo messages, in comma-separated runs

    def fits(self, settings: dict[str, Any], key: tuple[str, bool, bool, int]) -> bool:
        return key == self.key and settings == self.settings


@dataclass(slots=True)
class ResponsesTranslation:
    body: dict                       # the MiMo chat-completions request body, ready to send
    tool_map: dict[str, ToolSpec]    # upstream function name -> client identity
    include_encrypted: bool          # client asked include: ["reasoning.encrypted_content"]
    web_search: dict | None          # the client's web_search tool, set aside when native search is off
    warnings: list[str]              # notes for logging; never prompt text or keys
    encoded: bytes | None = None     # `body` as JSON (its messages last); None once `body` changed
    continuation: Continuation | None = None  # what the next request of this conversation may continue


# Fields MiMo has no place for, said once per process when they ask for something (see
# docs/request-fields.md for every field and what it gets).
_DROPPED = {
    "truncation": "the gateway does not drop items from a conversation that is too long for the model; "
                  "MiMo then answers context_length_exceeded",
    "service_tier": "MiMo has one service tier",
    "prompt_cache_retention": "MiMo keeps its prompt cache by itself",
    "client_metadata": "it is the client's own telemetry",
    "text.verbosity": "MiMo has no verbosity setting",
}
_LOGPROBS = "message.output_text.logprobs"
# What a continuation's translation depends on besides the input: the tools and their names, the
# instructions and the lines we add (tool_choice, text, max_tool_calls), thinking (reasoning).
_CONTINUED = ("tools", "instructions", "tool_choice", "text", "reasoning", "max_tool_calls")


def _reject_stateful(body: dict[str, Any]) -> None:
    if body.get("previous_response_id") not in (None, ""):
        raise _mimo.unsupported("previous_response_id", "send the whole conversation in 'input' instead.")
    if body.get("conversation") is not None:
        raise _mimo.unsupported("conversation", "send the whole conversation in 'input' instead.")
    if body.get("background") not in (None, False):
        raise _mimo.unsupported("background", "send the request without background mode.")
    if body.get("prompt") is not None:
        raise _mimo.unsupported("prompt", "send the prompt text in 'instructions' and 'input' instead.")


def _no_mimo_place(body: dict[str, Any], warnings: list[str]) -> None:
    """Fields MiMo cannot honour: refused when the answer would lack what they ask for, else
    dropped (once said); wrong types are 400s."""
    _mimo.top_logprobs(body.get("top_logprobs"))
    include = body.get("include")
    if include is not None and not isinstance(include, list):
        raise invalid_request("'include' must be an array.", param="include")
    if include and _LOGPROBS in include:
        raise _mimo.unsupported("include", f"MiMo does not return log probabilities ({_LOGPROBS}).")
    truncation = body.get("truncation")
    if truncation not in (None, "auto", "disabled"):
        raise invalid_request("'truncation' must be auto or disabled.", param="truncation")
    asked = {
        "truncation": truncation == "auto",
        "service_tier": body.get("service_tier") not in (None, "auto", "default"),
        "prompt_cache_retention": body.get("prompt_cache_retention") is not None,
        "client_metadata": bool(body.get("client_metadata")),
        "text.verbosity": isinstance(body.get("text"), dict) and body["text"].get("verbosity") is not None,
    }
    for key, why in _DROPPED.items():
        if asked[key]:
            _mimo.drop(warnings, key, why)


def _effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise invalid_request("'reasoning' must be an object.", param="reasoning")
    return _mimo.effort(reasoning.get("effort"), "reasoning.effort")


def _text_format(text: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(response_format, system line carrying a JSON schema)."""
    if text is None:
        return None, None
    if not isinstance(text, dict):
        raise invalid_request("'text' must be an object.", param="text")
    fmt = text.get("format")
    if fmt is None:
        return None, None
    if not isinstance(fmt, dict):
        raise invalid_request("'text.format' must be an object.", param="text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None, None
    if kind == "json_object":
        return {"type": "json_object"}, None
    if kind != "json_schema":
        raise invalid_request("'text.format.type' must be text, json_object or json_schema.", param="text.format.type")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise invalid_request("'text.format.schema' must be a JSON Schema object.", param="text.format.schema")
    return {"type": "json_object"}, _mimo.schema_line(schema, fmt.get("name"), fmt.get("description"))


def _instructions(value: Any, ctx: Ctx) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, list):
        raise invalid_request("'instructions' must be a string or an array.", param="instructions")
    texts: list[str] = []
    for i, item in enumerate(value):
        param = f"instructions[{i}]"
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and "content" in item:
            texts.append(parts_text(chat_parts(item["content"], "system", f"{param}.content", ctx)))
        elif isinstance(item, dict):
            texts.append(parts_text(chat_parts([item], "system", param, ctx)))
        else:
            raise invalid_request("Each instructions entry must be a string or an object.", param=param)
    return "\n\n".join(t for t in texts if t)


def _declared_types(tools: Any) -> frozenset[str]:
    if not isinstance(tools, list):
        return frozenset()
    return frozenset(t.get("type", "function") for t in tools if isinstance(t, dict) and isinstance(t.get("type", ""), str))


def _max_output_tokens(body: dict[str, Any], out: dict[str, Any]) -> None:
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = _mimo.max_tokens(body["max_output_tokens"], "max_output_tokens")


def chat_request_from_responses(
    body: dict, *, upstream_model: str, sealer: ReasoningSealer,
    native_web_search: bool = True, drop_unsupported_tools: bool = False, since: Continuation | None = None,
    continues: bool = False,
) -> ResponsesTranslation:
    """Translate one Responses request; raises `OpenAIError` (400) for invalid input. With
    `since` (the continuation of an earlier request of the same conversation), what that request
    translated is not translated again; the result is the same. `continues`: another request of
    this conversation will follow (a WebSocket connection's next frame), so the translation keeps
    its `continuation`; without it nothing is kept (that would hold a copy of a long history's
    JSON for the whole stream)."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    _reject_stateful(body)
    warnings = [f"ignored unknown field {str(k)[:64]!r}" for k in body if k not in _ACCEPTED]  # repr: one log line
    include = body.get("include")
    _no_mimo_place(body, warnings)
    parallel = _mimo.boolean(body, "parallel_tool_calls")
    calls = body.get("max_tool_calls")
    if calls is not None and (isinstance(calls, bool) or not isinstance(calls, int) or calls < 0):
        raise invalid_request("'max_tool_calls' must be a non-negative integer.", param="max_tool_calls")
    _mimo.boolean(body, "stream")  # the relay streams only for `true`; anything else but false/null is a mistake
    _mimo.boolean(body, "store")
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise invalid_request("'stream_options' must be an object.", param="stream_options")

    effort = _effort(body.get("reasoning"))
    thinking = _mimo.thinking(effort, upstream_model)
    settings = {k: body.get(k) for k in _CONTINUED}
    key = (upstream_model, native_web_search, drop_unsupported_tools, id(sealer))
    if since is not None and not since.fits(settings, key):
        since = None
    try:
        return _translate(body, settings, key, since, continues, sealer, thinking, effort, parallel, calls, include,
                          warnings)
    except CannotContinue:  # what was final for the last request is not for this one: from scratch
        return _translate(body, settings, key, None, continues, sealer, thinking, effort, parallel, calls, include,
                          warnings)


def _translate(body: dict[str, Any], settings: dict[str, Any], key: tuple[str, bool, bool, int],
               since: Continuation | None, continues: bool, sealer: ReasoningSealer, thinking: bool, effort: str | None,
               parallel: bool | None, calls: Any, include: Any, warnings: list[str]) -> ResponsesTranslation:
    upstream_model, native_web_search, drop_unsupported_tools, _ = key
    if since is not None:  # copies: a translation that fails leaves the continuation as it was
        names, declared, loaded = since.names.copy(), since.declared, list(since.loaded)
    else:
        names, loaded = ToolNames(), []
        declared = declare_tools(body.get("tools"), names, native_web_search_ok=native_web_search,
                                 drop_unsupported=drop_unsupported_tools, warnings=warnings)
    asked = body.get("model")
    ctx = Ctx(upstream_model, sealer, names, warnings, loaded, asked=asked if isinstance(asked, str) else None)
    instructions = _instructions(body.get("instructions"), ctx)
    if "input" not in body or body["input"] is None:
        raise invalid_request("'input' is required.", param="input")
    messages, checkpoint = translate_items(body["input"], ctx, thinking=thinking,
                                           since=since.checkpoint if since is not None else None)
    lead = [{"role": "system", "content": instructions}] if instructions else []
    if not messages and not lead:
        raise invalid_request("The request has no messages: 'input' is empty.", param="input")

    aside = Entry({"type": "web_search"}, "web_search") if declared.web_search else None
    choice = "none" if calls == 0 else body.get("tool_choice")  # no call may be made: offer none
    selection = _mimo.select_tools(choice, declared.entries + ctx.loaded, aside=aside,
                                   declared=_declared_types(body.get("tools")))
    response_format, schema_line = _text_format(body.get("text"))
    lines = [selection.line(), schema_line]
    final = _mimo.with_directives(lead + messages, lines)

    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": final,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _mimo.sampling(body, out, on=thinking, model=upstream_model, warnings=warnings)
    _max_output_tokens(body, out)
    if response_format:
        out["response_format"] = response_format
    _mimo.set_thinking(out, thinking, effort)
    if selection.entries:
        out["tools"] = [e.tool for e in selection.entries]
        out["tool_choice"] = "auto"  # MiMo treats every other value as auto
        if parallel is not None:
            out["parallel_tool_calls"] = parallel
    translation = ResponsesTranslation(
        body=out,
        tool_map=dict(names.specs),
        include_encrypted=isinstance(include, list) and "reasoning.encrypted_content" in include,
        web_search=declared.web_search if selection.search else None,
        warnings=warnings,
    )
    if not continues:
        translation.encoded = _encode(out, final, (0, ()), 0)[0]
        return translation
    fixed = _fixed(len(lead), checkpoint.messages if checkpoint is not None else [], any(lines))
    same = since is not None and since.lines == tuple(lines) and since.fixed <= fixed
    kept = (since.fixed, since.encoded) if same and since is not None else (0, ())
    translation.encoded, prefix = _encode(out, final, kept, fixed)
    translation.continuation = Continuation(settings, key, names, declared, list(ctx.loaded), checkpoint, tuple(lines),
                                            fixed, prefix)
    return translation


def _fixed(lead: int, fixed_messages: list[dict[str, Any]], directive: bool) -> int:
    """How many of the final messages a checkpoint fixes: the instructions, its messages, and our
    directive line when it falls among them (it goes after the leading system messages)."""
    if not directive:
        return lead + len(fixed_messages)
    if any(m["role"] != "system" for m in fixed_messages):
        return lead + len(fixed_messages) + 1
    return 0


def _encode(out: dict[str, Any], final: list[dict[str, Any]], kept: tuple[int, tuple[bytes, ...]],
            fixed: int) -> tuple[bytes, tuple[bytes, ...]]:
    """`out` as JSON, its messages last, taking the JSON of the first `kept[0]` messages as given
    (comma-separated runs); and the runs for the first `fixed` messages (fixed >= kept[0]), to
    keep. The body is made with one copy: a long conversation's bytes are not copied twice."""
    known, runs = kept
    try:
        if not known and not fixed:  # nothing to keep: one call
            return _json.dumps({**{k: v for k, v in out.items() if k != "messages"}, "messages": final}), ()
        head = _json.dumps({k: v for k, v in out.items() if k != "messages"})
        fresh = [_json.dumps(m) for m in final[known:]]
    except (TypeError, ValueError):
        raise invalid_request("The request contains values that cannot be encoded as JSON "
                              "(integers beyond 64 bits or invalid strings).") from None
    pieces = [head[:-1], b',"messages":[']
    for piece in (*runs, *fresh):
        pieces += (piece, b",")
    if runs or fresh:
        pieces.pop()  # the last comma
    pieces.append(b"]}")
    added = fresh[:fixed - known]
    return b"".join(pieces), (*runs, b",".join(added)) if added else runs
