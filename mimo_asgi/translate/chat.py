"""Chat Completions in: a client's chat body -> the body MiMo accepts (pure).

MiMo speaks chat completions already, so this is normalisation, not translation: send only
what MiMo documents, in the shapes it accepts (protocols.md A3-A5), and hand back its chunks
with the client's model name, `[DONE]` exactly once and errors as OpenAI-shaped chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .._models import fixes_sampling_when_thinking, supports_images, thinking_by_default
from .errors import invalid_request

PLACEHOLDER_REASONING = "(this turn ran without thinking mode)"
MAX_COMPLETION_TOKENS = 131072  # MiMo refuses larger values with a 400; no model writes more anyway
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "minimal": "low", "xhigh": "high", "max": "high"}
# Copied as given (nulls dropped); everything else is either rewritten below or not sent.
_PASSTHROUGH = ("stop", "frequency_penalty", "presence_penalty", "temperature", "top_p")
_HANDLED = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "reasoning_effort",
    "thinking", "tools", "tool_choice", "parallel_tool_calls", "response_format", "n", "web_search_options",
    *_PASSTHROUGH,
})
# Dropped without a warning: bookkeeping fields that do not change the answer.
_QUIET = frozenset({"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key", "seed"})
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_WEB_SEARCH_OPTIONS = ("max_keyword", "force_search", "limit")
_LOCATION_KEYS = ("country", "region", "city")


@dataclass(slots=True)
class ChatTranslation:
    body: dict
    include_usage: bool
    web_search: dict | None = None
    warnings: list[str] = field(default_factory=list)


def chat_request_from_chat(body: dict, *, upstream_model: str, native_web_search: bool = True) -> ChatTranslation:
    """The MiMo request for a client's chat completions body.

    Raises only OpenAIError (400, with `param`) for requests MiMo cannot serve.
    """
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    warnings: list[str] = []
    thinking = _thinking(body, upstream_model)
    out: dict[str, Any] = {"model": upstream_model}
    out["messages"] = _messages(body.get("messages"), upstream_model, thinking["type"] == "enabled", warnings)
    for key in _PASSTHROUGH:
        if body.get(key) is not None:
            out[key] = body[key]
    if thinking["type"] == "enabled" and fixes_sampling_when_thinking(upstream_model):
        out.pop("temperature", None)  # MiMo forces 1.0 / 0.95 with thinking on
        out.pop("top_p", None)
    _max_tokens(body, out)
    _n(body.get("n"))
    out["thinking"] = thinking
    effort = _effort(body.get("reasoning_effort"))
    if effort and effort != "none" and thinking["type"] == "enabled":
        out["reasoning_effort"] = effort
    include_usage = _stream(body, out)
    lines = [_response_format(body.get("response_format"), out)]
    web_search = _tools(body, out, native_web_search, warnings, lines)
    _directives(out["messages"], [line for line in lines if line])
    if body.get("parallel_tool_calls") is not None and "tools" in out:
        out["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    dropped = sorted(k for k in body if k not in _HANDLED and k not in _QUIET)
    if dropped:
        # repr and a cap: client-chosen names must not start a new log line or flood it
        names = (k[:64] if k[:64].isprintable() else repr(k[:64]) for k in dropped[:20])
        warnings.append(f"ignored fields MiMo does not support: {', '.join(names)}")
    return ChatTranslation(out, include_usage, web_search, warnings)


# -- scalar parameters -----------------------------------------------------------------------


def _thinking(body: dict, model: str) -> dict:
    """The explicit `thinking` switch: the client's object, else the effort's, else the model's default."""
    given = body.get("thinking")
    if given is not None:
        kind = given.get("type") if isinstance(given, dict) else None
        if kind not in ("enabled", "disabled"):
            raise invalid_request('`thinking` must be {"type": "enabled"} or {"type": "disabled"}.', param="thinking")
        return {"type": kind}
    effort = _effort(body.get("reasoning_effort"))
    if effort is None:
        return {"type": "enabled" if thinking_by_default(model) else "disabled"}
    return {"type": "disabled" if effort == "none" else "enabled"}  # asking for effort asks for thinking


def _effort(value: Any) -> str | None:
    """MiMo accepts only low/medium/high; `none` means thinking off."""
    if value is None:
        return None
    if value == "none":
        return "none"
    if isinstance(value, str) and value in _EFFORT:
        return _EFFORT[value]
    raise invalid_request(
        f"Unsupported reasoning_effort {value!r}; use none, minimal, low, medium, high or xhigh.",
        param="reasoning_effort",
    )


def _positive_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_request(f"`{param}` must be a positive integer.", param=param)
    return value


def _max_tokens(body: dict, out: dict) -> None:
    value = body.get("max_completion_tokens")
    param = "max_completion_tokens"
    if value is None:
        value, param = body.get("max_tokens"), "max_tokens"
    if value is not None:
        out["max_completion_tokens"] = min(_positive_int(value, param), MAX_COMPLETION_TOKENS)


def _n(value: Any) -> None:
    if value is not None and _positive_int(value, "n") != 1:
        raise invalid_request("MiMo returns one choice per request; `n` must be 1.", param="n")


def _stream(body: dict, out: dict) -> bool:
    """Sets stream flags; returns whether the client asked for usage in the stream."""
    stream = body.get("stream")
    if stream is None or stream is False:
        return False
    if stream is not True:
        raise invalid_request("`stream` must be a boolean.", param="stream")
    out["stream"] = True
    out["stream_options"] = {"include_usage": True}  # we always want usage, for accounting
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _response_format(value: Any, out: dict) -> str | None:
    """MiMo documents JSON mode only: a schema becomes JSON mode plus a system line carrying it."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
        return None
    if kind != "json_schema":
        raise invalid_request("`response_format.type` must be text, json_object or json_schema.",
                              param="response_format")
    spec = value.get("json_schema") if isinstance(value.get("json_schema"), dict) else {}
    schema = spec.get("schema", {})
    out["response_format"] = {"type": "json_object"}
    return "Reply with a single JSON object that conforms to this JSON Schema:\n" + _json.dumps_str(schema)


def _directives(messages: list[dict], lines: list[str]) -> None:
    """Our instructions as one system message after the client's leading system messages."""
    if lines:
        at = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
        messages.insert(at, {"role": "system", "content": "\n\n".join(lines)})


# -- tools -----------------------------------------------------------------------------------


def _tools(body: dict, out: dict, native_web_search: bool, warnings: list[str], lines: list) -> dict | None:
    """Sets `tools` / `tool_choice` (never null, never empty); returns a web_search tool taken out."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_request("`tools` must be an array.", param="tools")
    functions: list[dict] = []
    search: tuple[dict, dict] | None = None  # (the client's tool, MiMo's tool)
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            fn = _function_tool(tool, i)
            if any(f["function"]["name"] == fn["function"]["name"] for f in functions):
                warnings.append(f"tools[{i}]: duplicate function name {fn['function']['name']!r} dropped")
                continue
            functions.append(fn)
        elif kind == "custom":
            raise invalid_request(
                "Custom (freeform) tools are not supported on the Chat Completions path to MiMo yet; "
                "declare the tool as a function, or use the Responses API.", param=f"tools[{i}]")
        elif kind in ("web_search", "web_search_preview"):
            search = search or (tool, _native_search(tool))
        elif isinstance(tool, dict):
            warnings.append(f"tools[{i}]: tool type {kind!r} is not supported by MiMo and was dropped")
        else:
            raise invalid_request(f"`tools[{i}]` must be an object.", param=f"tools[{i}]")
    options = body.get("web_search_options")
    if search is None and isinstance(options, dict):
        search = (options, _native_search(options))
    functions, keep_search, must = _tool_choice(body.get("tool_choice"), functions, search is not None)
    native = search[1] if search and keep_search and native_web_search else None
    taken = search[0] if search and keep_search and not native_web_search else None
    tools = [*functions, native] if native else functions
    if tools:
        out["tools"] = tools
        out["tool_choice"] = "auto"  # MiMo treats every other value as auto (A3)
    if must and native and not functions:
        native["force_search"] = True  # MiMo's own way to insist on searching
    elif must and tools:
        lines.append(_must_call(tools))
    return taken


def _function_tool(tool: dict, i: int) -> dict:
    fn = tool.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(name, str) or not name:
        raise invalid_request(f"`tools[{i}].function.name` is required.", param=f"tools[{i}].function.name")
    clean: dict[str, Any] = {"name": name}
    for key in ("description", "parameters"):
        if fn.get(key) is not None:
            clean[key] = fn[key]
    if isinstance(fn.get("strict"), bool):  # MiMo rejects `strict: null`
        clean["strict"] = fn["strict"]
    return {"type": "function", "function": clean}


def _native_search(tool: dict) -> dict:
    """MiMo's own web_search tool, keeping only the options it documents (A9)."""
    native: dict[str, Any] = {"type": "web_search"}
    for key in _WEB_SEARCH_OPTIONS:
        if tool.get(key) is not None:
            native[key] = tool[key]
    location = tool.get("user_location")
    if isinstance(location, dict):
        where = location.get("approximate") if isinstance(location.get("approximate"), dict) else location
        picked = {k: where[k] for k in _LOCATION_KEYS if isinstance(where.get(k), str) and where[k]}
        if picked:
            native["user_location"] = {"type": "approximate", **picked}
    return native


def _tool_choice(choice: Any, functions: list[dict], has_search: bool) -> tuple[list[dict], bool, bool]:
    """(functions to send, keep web search?, must the model call one?). MiMo cannot force a call (A3)."""
    if choice is None or choice == "auto":
        return functions, True, False
    if choice == "none":
        return [], False, False
    if choice == "required":
        return functions, True, True
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function":
        inner = choice.get("function") if isinstance(choice.get("function"), dict) else choice
        name = inner.get("name")
        picked = [f for f in functions if f["function"]["name"] == name]
        if not picked:
            raise invalid_request(f"`tool_choice` names function {name!r}, which is not in `tools`.",
                                  param="tool_choice")
        return picked, False, True
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools") if isinstance(choice.get("allowed_tools"), dict) else choice
        allowed = spec.get("tools") if isinstance(spec.get("tools"), list) else []
        names = {_allowed_name(t) for t in allowed}
        picked = [f for f in functions if f["function"]["name"] in names]
        search = bool(names & {"web_search", "web_search_preview"})
        return picked, search, spec.get("mode") == "required"
    if kind in ("web_search", "web_search_preview") and has_search:
        return [], True, True
    raise invalid_request("Unsupported `tool_choice`; use auto, none, required, a function or allowed_tools.",
                          param="tool_choice")


def _allowed_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    inner = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    name = inner.get("name") if tool.get("type") == "function" else tool.get("type")
    return name if isinstance(name, str) else None


def _must_call(tools: list[dict]) -> str:
    names = [f"`{t['function']['name']}`" if t["type"] == "function" else "`web_search`" for t in tools]
    if len(names) == 1:
        return f"In your next reply you must call the tool {names[0]}; do not answer without calling it."
    return ("In your next reply you must call at least one of these tools: " + ", ".join(names)
            + "; do not answer without calling a tool.")


# -- messages --------------------------------------------------------------------------------


def _messages(raw: Any, model: str, thinking: bool, warnings: list[str]) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise invalid_request("`messages` must be a non-empty array.", param="messages")
    images = supports_images(model)
    return [_message(m, i, model, images, thinking, warnings) for i, m in enumerate(raw)]


def _message(msg: Any, i: int, model: str, images: bool, thinking: bool, warnings: list[str]) -> dict:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise invalid_request(f"`{where}` must be an object.", param=where)
    role = msg.get("role")
    if role not in _ROLES:
        raise invalid_request(f"`{where}.role` must be one of system, developer, user, assistant, tool.",
                              param=f"{where}.role")
    content = msg.get("content")
    if role == "user":
        return {"role": role, "content": _user_content(content, where, model, images, warnings)}
    if role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid_request(f"`{where}.tool_call_id` is required.", param=f"{where}.tool_call_id")
        return {"role": "tool", "tool_call_id": call_id, "content": _flat_text(content, where, warnings)}
    if role != "assistant":
        return {"role": "system", "content": _flat_text(content, where, warnings)}
    return _assistant(msg, where, thinking, warnings)


def _assistant(msg: dict, where: str, thinking: bool, warnings: list[str]) -> dict:
    out: dict[str, Any] = {"role": "assistant"}
    calls = _tool_calls(msg.get("tool_calls"), where)
    content = msg.get("content")
    if content is not None or not calls:  # never `content: null` (A4)
        out["content"] = _flat_text(content, where, warnings)
    reasoning = msg.get("reasoning_content")
    if not isinstance(reasoning, str) or not reasoning:
        reasoning = msg.get("reasoning") if isinstance(msg.get("reasoning"), str) else None
    if reasoning:
        out["reasoning_content"] = reasoning
    if calls:
        out["tool_calls"] = calls
        if thinking and not reasoning:  # MiMo 400s on tool-call turns without their reasoning (A4)
            out["reasoning_content"] = PLACEHOLDER_REASONING
    return out


def _tool_calls(raw: Any, where: str) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_request(f"`{where}.tool_calls` must be an array.", param=f"{where}.tool_calls")
    calls = []
    for j, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            raise invalid_request(f"`{where}.tool_calls[{j}]` needs an id and a function name.",
                                  param=f"{where}.tool_calls[{j}]")
        calls.append({"id": call["id"], "type": "function",
                      "function": {"name": fn["name"], "arguments": _arguments(fn.get("arguments"))}})
    return calls


def _arguments(value: Any) -> str:
    """Replayed arguments must be valid JSON (truncated ones 400 upstream): anything else is `{}`."""
    if isinstance(value, dict):
        return _json.dumps_str(value)
    if not isinstance(value, str) or not value.strip():
        return "{}"
    try:
        _json.loads(value)
    except _json.JSONDecodeError:
        return "{}"
    return value


def _parts(content: Any, where: str) -> list[dict]:
    if not isinstance(content, list):
        raise invalid_request(f"`{where}.content` must be a string or an array of parts.", param=f"{where}.content")
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise invalid_request(f"`{where}.content[{j}]` must be an object.", param=f"{where}.content[{j}]")
    return content


def _flat_text(content: Any, where: str, warnings: list[str]) -> str:
    """System, assistant and tool content as one string (MiMo 400s on tool content lists, A4)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in _parts(content, where):
        kind = part.get("type")
        text = part.get("text") if kind == "text" else part.get("refusal") if kind == "refusal" else None
        if isinstance(text, str):
            if text:
                texts.append(text)
        else:
            texts.append(f"[{kind or 'unknown'} content omitted]")
            warnings.append(f"{where}: {kind!r} part replaced by a text marker")
    return "\n".join(texts)


def _user_content(content: Any, where: str, model: str, images: bool, warnings: list[str]) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict] = []
    for j, part in enumerate(_parts(content, where)):
        kind = part.get("type")
        if kind == "text":
            if isinstance(part.get("text"), str) and part["text"]:  # empty text parts 400 upstream
                parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and images:
            parts.append({"type": "image_url", "image_url": _image(part.get("image_url"), f"{where}.content[{j}]")})
        elif kind == "image_url":
            parts.append({"type": "text", "text": f"[image omitted: {model} does not accept images]"})
            warnings.append(f"{where}: image replaced by a text marker ({model} does not accept images)")
        elif kind in ("input_audio", "audio_url"):
            parts.append(part)
        else:
            parts.append({"type": "text", "text": f"[{kind or 'unknown'} content omitted]"})
            warnings.append(f"{where}: {kind!r} part replaced by a text marker")
    if not parts:
        return ""
    if not any(p["type"] == "text" for p in parts):
        parts.append({"type": "text", "text": " "})  # MiMo needs a text part next to media (A4)
    return parts


def _image(value: Any, where: str) -> dict:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        raise invalid_request(f"`{where}.image_url.url` is required.", param=f"{where}.image_url")
    return {k: value[k] for k in ("url", "detail") if value.get(k) is not None}
