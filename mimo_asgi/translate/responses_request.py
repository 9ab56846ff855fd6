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
from ._items import input_messages
from ._mimo import MUST_CALL_ANY
from ._tooldefs import Entry, ToolNames, declare_tools
from ._tools import ToolSpec
from .errors import invalid_request

__all__ = ["MUST_CALL_ANY", "ResponsesTranslation", "chat_request_from_responses"]

_ACCEPTED = {
    "model", "stream", "user", "metadata", "store", "include", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "service_tier", "truncation", "client_metadata", "max_tool_calls", "top_logprobs",
    "stream_options", "previous_response_id", "background", "conversation", "prompt",
    "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "temperature", "top_p",
    "max_output_tokens", "text", "reasoning", "frequency_penalty", "presence_penalty", "stop",
}


@dataclass(slots=True)
class ResponsesTranslation:
    body: dict                       # the MiMo chat-completions request body, ready to send
    tool_map: dict[str, ToolSpec]    # upstream function name -> client identity
    include_encrypted: bool          # client asked include: ["reasoning.encrypted_content"]
    web_search: dict | None          # the client's web_search tool, set aside when native search is off
    warnings: list[str]              # notes for logging; never prompt text or keys


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
    native_web_search: bool = True, drop_unsupported_tools: bool = False,
) -> ResponsesTranslation:
    """Translate one Responses request; raises `OpenAIError` (400) for invalid input."""
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
    names = ToolNames()
    declared = declare_tools(body.get("tools"), names, native_web_search_ok=native_web_search,
                             drop_unsupported=drop_unsupported_tools, warnings=warnings)
    asked = body.get("model")
    ctx = Ctx(upstream_model, sealer, names, warnings, asked=asked if isinstance(asked, str) else None)
    instructions = _instructions(body.get("instructions"), ctx)
    if "input" not in body or body["input"] is None:
        raise invalid_request("'input' is required.", param="input")
    messages = input_messages(body["input"], ctx, thinking=thinking)
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise invalid_request("The request has no messages: 'input' is empty.", param="input")

    aside = Entry({"type": "web_search"}, "web_search") if declared.web_search else None
    choice = "none" if calls == 0 else body.get("tool_choice")  # no call may be made: offer none
    selection = _mimo.select_tools(choice, declared.entries + ctx.loaded, aside=aside,
                                   declared=_declared_types(body.get("tools")))
    response_format, schema_line = _text_format(body.get("text"))

    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": _mimo.with_directives(messages, [selection.line(), schema_line]),
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
    try:
        _json.dumps(out)
    except (TypeError, ValueError):
        raise invalid_request("The request contains values that cannot be encoded as JSON "
                              "(integers beyond 64 bits or invalid strings).") from None
    return ResponsesTranslation(
        body=out,
        tool_map=dict(names.specs),
        include_encrypted=isinstance(include, list) and "reasoning.encrypted_content" in include,
        web_search=declared.web_search if selection.search else None,
        warnings=warnings,
    )

