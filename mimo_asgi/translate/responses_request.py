"""Responses request body -> MiMo chat-completions request body (pure).

The output always streams (`stream: true` + usage) and carries only fields MiMo documents
(protocols.md A3). Invalid input raises `OpenAIError` 400 with `param` naming the field.

Field mapping:
- `instructions` (string or array form), `system` and `developer` messages -> `system`
  messages, in order; `input` items -> messages (see `_items`).
- `max_output_tokens` -> `max_completion_tokens` (capped at MiMo's 131072); `temperature` / `top_p` passed, except
  with thinking on for models where MiMo forces them; `frequency_penalty`,
  `presence_penalty`, `stop` passed.
- `reasoning.effort`: none -> `thinking: disabled`; minimal -> low; low/medium/high kept;
  xhigh/max -> high; absent -> the model's thinking default and no effort. `thinking` is
  always sent explicitly.
- `text.format`: json_object -> `response_format: json_object`; json_schema -> json_object
  plus a system line carrying the schema.
- `previous_response_id`, `conversation`, `background: true` and stored `prompt`s cannot be
  served without a store: 400. Fields with no MiMo place (`user`, `metadata`, `store`,
  `include`, `prompt_cache_key`, `text.verbosity`, ...) are accepted and not sent.

tool_choice mapping (MiMo treats every value other than "auto" as "auto", A3):
- absent -> omitted; "auto" -> "auto".
- "none" -> no `tools` and no `tool_choice`: the model cannot call what it cannot see.
- "required" -> tools kept, "auto", plus a system line: the model must call a tool.
- `{type: function|custom, name}` -> only that tool, "auto", plus a must-call-it line.
- `{type: allowed_tools, mode, tools}` -> only the listed tools; mode "required" adds the
  must-call line.
- hosted choices (`{type: web_search}`, ...) -> "auto"; a web_search choice also sets
  `force_search` on MiMo's native search tool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import _json
from .._models import fixes_sampling_when_thinking, thinking_by_default
from .._seal import ReasoningSealer
from ._content import Ctx, chat_parts, parts_text, safe_dumps
from .chat import MAX_COMPLETION_TOKENS
from ._items import input_messages
from ._tooldefs import Entry, ToolNames, declare_tools
from ._tools import ToolSpec
from .errors import invalid_request

__all__ = ["ResponsesTranslation", "chat_request_from_responses"]

MUST_CALL_ANY = "You must call at least one of the available tools in your next response; do not answer with text only."
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
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


def _unsupported(field: str, why: str) -> None:
    raise invalid_request(f"'{field}' is not supported for MiMo-routed requests yet; {why}",
                          param=field, code="unsupported_parameter")


def _reject_stateful(body: dict[str, Any]) -> None:
    if body.get("previous_response_id") not in (None, ""):
        _unsupported("previous_response_id", "send the whole conversation in 'input' instead.")
    if body.get("conversation") is not None:
        _unsupported("conversation", "send the whole conversation in 'input' instead.")
    if body.get("background") not in (None, False):
        _unsupported("background", "send the request without background mode.")
    if body.get("prompt") is not None:
        _unsupported("prompt", "send the prompt text in 'instructions' and 'input' instead.")


def _number(body: dict[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise invalid_request(f"'{key}' must be a number.", param=key)


def _thinking(reasoning: Any, model: str) -> tuple[bool, str | None]:
    """(thinking on, reasoning_effort to send)."""
    if reasoning is None:
        return thinking_by_default(model), None
    if not isinstance(reasoning, dict):
        raise invalid_request("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is None:
        return thinking_by_default(model), None
    if effort == "none":
        return False, None
    if isinstance(effort, str) and effort in _EFFORTS:
        return True, _EFFORTS[effort]
    raise invalid_request("'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh.",
                          param="reasoning.effort")


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
    name = fmt.get("name") if isinstance(fmt.get("name"), str) and fmt.get("name") else "response"
    about = f" ({fmt['description']})" if isinstance(fmt.get("description"), str) and fmt["description"] else ""
    line = (f"Respond with only a JSON object that conforms to the JSON schema \"{name}\"{about}:\n"
            f"{safe_dumps(schema)}")
    return {"type": "json_object"}, line


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


def _named(entries: list[Entry], choice: dict[str, Any]) -> Entry:
    name = choice.get("name")
    if name is None and isinstance(choice.get("function"), dict):  # the chat shape
        name = choice["function"].get("name")
    if not isinstance(name, str) or not name:
        raise invalid_request("'tool_choice.name' must be a non-empty string.", param="tool_choice.name")
    namespace = choice.get("namespace")
    named = [e for e in entries if e.spec and e.client_type in ("function", "custom") and e.spec.name == name]
    scoped = [e for e in named if e.spec and e.spec.namespace == namespace] if namespace else \
        [e for e in named if e.spec and e.spec.namespace is None] or named
    found = scoped or [e for e in entries if e.upstream == name]
    if not found:
        raise invalid_request(f"tool_choice names tool '{name}', which is not among the request's tools.",
                              param="tool_choice")
    return found[0]


def _listed(entry: Entry, wanted: Any) -> bool:
    if not isinstance(wanted, dict):
        return False
    kind = wanted.get("type")
    if kind in ("function", "custom"):
        return bool(entry.spec and entry.client_type in ("function", "custom") and entry.spec.name == wanted.get("name")
                    and (wanted.get("namespace") in (None, entry.spec.namespace)))
    if kind == "namespace":
        return bool(entry.spec and entry.spec.namespace == wanted.get("name"))
    if isinstance(kind, str) and kind.startswith("web_search"):
        return entry.client_type == "web_search"
    return kind == entry.client_type


def _tool_choice(choice: Any, entries: list[Entry]) -> tuple[list[Entry], str | None, str | None]:
    """(tools to send, tool_choice to send, system line)."""
    if choice is None:
        return entries, None, None
    if isinstance(choice, str):
        if choice == "auto":
            return entries, "auto", None
        if choice == "none":
            return [], None, None
        if choice == "required":
            return entries, "auto", MUST_CALL_ANY
        raise invalid_request("'tool_choice' must be none, auto, required or an object.", param="tool_choice")
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise invalid_request("'tool_choice' must be a string or an object with a 'type'.", param="tool_choice")
    kind = choice["type"]
    if kind in ("function", "custom"):
        entry = _named(entries, choice)
        return [entry], "auto", f"You must call the `{entry.upstream}` tool in your next response."
    if kind == "allowed_tools":
        mode, listed = choice.get("mode", "auto"), choice.get("tools")
        if mode not in ("auto", "required"):
            raise invalid_request("'tool_choice.mode' must be auto or required.", param="tool_choice.mode")
        if not isinstance(listed, list):
            raise invalid_request("'tool_choice.tools' must be an array.", param="tool_choice.tools")
        kept = [e for e in entries if any(_listed(e, w) for w in listed)]
        return kept, "auto", MUST_CALL_ANY if mode == "required" else None
    if kind.startswith("web_search"):
        for e in entries:
            if e.client_type == "web_search":
                e.tool["force_search"] = True
    return entries, "auto", None


def _with_directives(messages: list[dict[str, Any]], lines: list[str]) -> list[dict[str, Any]]:
    """Directive lines as one system message after the leading system messages."""
    if not lines:
        return messages
    at = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    return [*messages[:at], {"role": "system", "content": "\n\n".join(lines)}, *messages[at:]]


def _sampling(body: dict[str, Any], out: dict[str, Any], thinking: bool, model: str, warnings: list[str]) -> None:
    fixed = thinking and fixes_sampling_when_thinking(model)
    for key in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        value = _number(body, key)
        if value is None:
            continue
        if fixed and key in ("temperature", "top_p"):
            warnings.append(f"{key} not sent: {model} fixes it while thinking")
            continue
        out[key] = value
    tokens = body.get("max_output_tokens")
    if tokens is not None:
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise invalid_request("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
        out["max_completion_tokens"] = min(tokens, MAX_COMPLETION_TOKENS)
    stop = body.get("stop")
    if stop is not None:
        if not (isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
            raise invalid_request("'stop' must be a string or an array of strings.", param="stop")
        out["stop"] = stop


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
    if include is not None and not isinstance(include, list):
        raise invalid_request("'include' must be an array.", param="include")
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise invalid_request("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")

    thinking, effort = _thinking(body.get("reasoning"), upstream_model)
    names = ToolNames()
    declared = declare_tools(body.get("tools"), names, native_web_search_ok=native_web_search,
                             drop_unsupported=drop_unsupported_tools, warnings=warnings)
    ctx = Ctx(upstream_model, sealer, names, warnings)
    instructions = _instructions(body.get("instructions"), ctx)
    if "input" not in body or body["input"] is None:
        raise invalid_request("'input' is required.", param="input")
    messages = input_messages(body["input"], ctx, thinking=thinking)
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise invalid_request("The request has no messages: 'input' is empty.", param="input")

    choice = body.get("tool_choice")
    tools, tool_choice, must_call = _tool_choice(choice, declared.entries + ctx.loaded)
    if not tools:
        tool_choice = must_call = None
    response_format, schema_line = _text_format(body.get("text"))
    web_search = declared.web_search if declared.web_search and _allows_web_search(choice) else None

    out: dict[str, Any] = {
        "model": upstream_model,
        "messages": _with_directives(messages, [line for line in (must_call, schema_line) if line]),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _sampling(body, out, thinking, upstream_model, warnings)
    if response_format:
        out["response_format"] = response_format
    out["thinking"] = {"type": "enabled" if thinking else "disabled"}
    if thinking and effort:
        out["reasoning_effort"] = effort
    if tools:
        out["tools"] = [e.tool for e in tools]
        if tool_choice:
            out["tool_choice"] = tool_choice
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
        web_search=web_search,
        warnings=warnings,
    )


def _allows_web_search(choice: Any) -> bool:
    """Whether the client's tool_choice leaves web search usable (for auto search)."""
    if choice == "none":
        return False
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            return False
        if kind == "allowed_tools":
            listed = choice.get("tools") if isinstance(choice.get("tools"), list) else []
            return any(isinstance(w, dict) and str(w.get("type", "")).startswith("web_search") for w in listed)
    return True
