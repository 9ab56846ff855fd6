"""Chat Completions in: a client's chat body -> the body MiMo accepts (pure).

MiMo speaks chat completions already, so this is normalisation, not translation: send only
what MiMo accepts, in the shapes it accepts, and hand back its chunks with the client's model
name, `[DONE]` exactly once and errors as OpenAI-shaped chunks. MiMo's rules (thinking, effort,
sampling, the token cap, tool_choice, the lines added to the prompt, web search) are in `_mimo`;
this module reads the Chat shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import _json
from .._models import supports_images
from . import _mimo
from ._mimo import MAX_COMPLETION_TOKENS, PLACEHOLDER_REASONING
from ._tools import Entry, ToolSpec
from .chat_stream import ALL_CALLS, CallShape
from .errors import invalid_request

__all__ = ["MAX_COMPLETION_TOKENS", "PLACEHOLDER_REASONING", "ChatTranslation", "chat_request_from_chat"]

# Every Chat Completions field the gateway knows; docs/request-fields.md says what each gets.
_MAPPED = frozenset({
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "reasoning_effort",
    "thinking", "tools", "tool_choice", "parallel_tool_calls", "response_format", "n", "web_search_options",
    "stop", "frequency_penalty", "presence_penalty", "temperature", "top_p", "functions", "function_call",
    "prompt_cache_key",  # the account pool keeps a conversation on one account by it
    "logprobs", "top_logprobs", "logit_bias", "modalities", "audio",  # refused when they ask for something
})
# Not sent (MiMo has no place for them), said once per process when they ask for something.
_DROPPED = {
    "seed": "MiMo has no seed, so answers are not reproducible",
    "user": "it identifies an end user to OpenAI",
    "safety_identifier": "it identifies an end user to OpenAI",
    "metadata": "the gateway does not store Chat Completions",
    "store": "the gateway does not store Chat Completions",
    "service_tier": "MiMo has one service tier",
    "prompt_cache_retention": "MiMo keeps its prompt cache by itself",
    "verbosity": "MiMo has no verbosity setting",
    "prediction": "MiMo has no predicted outputs",
}
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


@dataclass(slots=True)
class ChatTranslation:
    body: dict
    include_usage: bool
    web_search: dict | None = None
    warnings: list[str] = field(default_factory=list)
    calls: CallShape = ALL_CALLS  # how the answer's tool calls go back (ChatStream, chat_completion_for_client)


def chat_request_from_chat(body: dict, *, upstream_model: str, native_web_search: bool = True) -> ChatTranslation:
    """The MiMo request for a client's chat completions body.

    Raises only OpenAIError (400, with `param`) for requests MiMo cannot serve.
    """
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    warnings: list[str] = []
    effort = _mimo.effort(body.get("reasoning_effort"), "reasoning_effort")
    thinking = _thinking(body.get("thinking"), effort, upstream_model)
    out: dict[str, Any] = {"model": upstream_model}
    messages = _messages(body.get("messages"), _Turns(upstream_model, body.get("model"), thinking, warnings))
    _mimo.sampling(body, out, on=thinking, model=upstream_model, warnings=warnings)
    _max_tokens(body, out)
    _n(body.get("n"))
    _mimo.set_thinking(out, thinking, effort)
    include_usage = _stream(body, out)
    _no_mimo_place(body, warnings)
    schema_line = _response_format(body.get("response_format"), out)
    legacy = _legacy_functions(body)
    web_search, must_call = _tools(legacy or body, out, native_web_search, warnings)
    out["messages"] = _mimo.with_directives(messages, [must_call, schema_line])
    parallel = _mimo.boolean(body, "parallel_tool_calls")
    if legacy is not None:
        parallel = False  # a legacy answer holds one function_call
    if parallel is not None and "tools" in out:
        out["parallel_tool_calls"] = parallel
    dropped = sorted(k for k in body if k not in _MAPPED and k not in _DROPPED)
    if dropped:
        # repr and a cap: client-chosen names must not start a new log line or flood it
        names = (k[:64] if k[:64].isprintable() else repr(k[:64]) for k in dropped[:20])
        warnings.append(f"ignored fields MiMo does not support: {', '.join(names)}")
    calls = CallShape(legacy=legacy is not None, limit=1 if parallel is False else None)
    return ChatTranslation(out, include_usage, web_search, warnings, calls)


# -- scalar parameters -----------------------------------------------------------------------


def _thinking(given: Any, effort: str | None, model: str) -> bool:
    """MiMo's own `thinking` switch when the client sent it, else what the effort says."""
    if given is None:
        return _mimo.thinking(effort, model)
    kind = given.get("type") if isinstance(given, dict) else None
    if kind not in ("enabled", "disabled"):
        raise invalid_request('`thinking` must be {"type": "enabled"} or {"type": "disabled"}.', param="thinking")
    return kind == "enabled"


def _no_mimo_place(body: dict, warnings: list[str]) -> None:
    """Fields MiMo cannot honour: refused when the answer would lack what they ask for, else
    dropped (once said); wrong types are 400s."""
    if _mimo.boolean(body, "logprobs"):
        raise _mimo.unsupported("logprobs", "MiMo does not return log probabilities.")
    _mimo.top_logprobs(body.get("top_logprobs"))
    if body.get("logit_bias"):
        raise _mimo.unsupported("logit_bias", "MiMo has no logit bias.")
    modalities = body.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or any(m != "text" for m in modalities)):
        raise _mimo.unsupported("modalities", "MiMo answers with text only.")
    if body.get("audio") is not None:
        raise _mimo.unsupported("audio", "MiMo answers with text only.")
    store = _mimo.boolean(body, "store")
    asked = {"store": bool(store), "service_tier": body.get("service_tier") not in (None, "auto", "default"),
             "metadata": bool(body.get("metadata"))}
    for key, why in _DROPPED.items():
        if asked.get(key, body.get(key) is not None):
            _mimo.drop(warnings, key, why)


def _max_tokens(body: dict, out: dict) -> None:
    value = body.get("max_completion_tokens")
    param = "max_completion_tokens"
    if value is None:
        value, param = body.get("max_tokens"), "max_tokens"
    if value is not None:
        out["max_completion_tokens"] = _mimo.max_tokens(value, param)


def _n(value: Any) -> None:
    if value is not None and _mimo.positive_int(value, "n") != 1:
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
    if options is not None and not isinstance(options, dict):
        raise invalid_request("`stream_options` must be an object.", param="stream_options")
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
    out["response_format"] = {"type": "json_object"}
    return _mimo.schema_line(spec.get("schema"), spec.get("name"), spec.get("description"))


# -- tools -----------------------------------------------------------------------------------


def _tools(body: dict, out: dict, native_web_search: bool, warnings: list[str]) -> tuple[dict | None, str | None]:
    """Sets `tools` / `tool_choice` (never null, never empty); returns the web_search tool set
    aside for the gateway's own search, and the must-call line."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid_request("`tools` must be an array.", param="tools")
    entries: list[Entry] = []
    search: dict | None = None  # the client's web_search tool
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            fn = _function_tool(tool, i)
            name = fn["function"]["name"]
            if any(e.upstream == name for e in entries):
                warnings.append(f"tools[{i}]: duplicate function name {name!r} dropped")
                continue
            entries.append(Entry(fn, "function", ToolSpec("function", name)))
        elif kind == "custom":
            raise invalid_request(
                "Custom (freeform) tools are not supported on the Chat Completions path to MiMo yet; "
                "declare the tool as a function, or use the Responses API.", param=f"tools[{i}]")
        elif kind in ("web_search", "web_search_preview"):
            search = search or tool
        elif isinstance(tool, dict):
            warnings.append(f"tools[{i}]: tool type {kind!r} is not supported by MiMo and was dropped")
        else:
            raise invalid_request(f"`tools[{i}]` must be an object.", param=f"tools[{i}]")
    options = body.get("web_search_options")
    if search is None and isinstance(options, dict):
        search = options
    aside = None
    if search is not None and native_web_search:
        entries.append(Entry(_mimo.native_web_search(search), "web_search"))
    elif search is not None:
        aside = Entry({"type": "web_search"}, "web_search")
    declared = {t["type"] for t in raw if isinstance(t, dict) and isinstance(t.get("type"), str)}
    if isinstance(options, dict):
        declared.add("web_search")
    selection = _mimo.select_tools(body.get("tool_choice"), entries, aside=aside, declared=frozenset(declared))
    if selection.entries:
        out["tools"] = [e.tool for e in selection.entries]
        out["tool_choice"] = "auto"  # MiMo treats every other value as auto
    return (search if aside is not None and selection.search else None), selection.line()


def _function_tool(tool: dict, i: int) -> dict:
    fn = tool.get("function")
    name = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(fn, dict) or not isinstance(name, str) or not name:
        raise invalid_request(f"`tools[{i}].function.name` is required.", param=f"tools[{i}].function.name")
    clean: dict[str, Any] = {"name": name}
    for key in ("description", "parameters"):
        if fn.get(key) is not None:
            clean[key] = fn[key]
    if isinstance(fn.get("strict"), bool):  # MiMo rejects `strict: null`
        clean["strict"] = fn["strict"]
    return {"type": "function", "function": clean}


def _legacy_functions(body: dict) -> dict | None:
    """The deprecated `functions` / `function_call` as the `tools` / `tool_choice` they stand for
    (in a copy of `body`), or None when the request does not use `functions`."""
    functions, choice = body.get("functions"), body.get("function_call")
    if functions is None:
        if choice is not None:
            raise invalid_request("`function_call` is only allowed with `functions`; use `tool_choice` with `tools`.",
                                  param="function_call")
        return None
    if body.get("tools") is not None or body.get("tool_choice") is not None:
        raise invalid_request("Send either `functions` (deprecated) or `tools`, not both.", param="functions")
    if not isinstance(functions, list):
        raise invalid_request("`functions` must be an array.", param="functions")
    for i, function in enumerate(functions):
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise invalid_request(f"`functions[{i}].name` is required.", param=f"functions[{i}].name")
    tools = [{"type": "function", "function": f} for f in functions]
    if choice is None or choice in ("auto", "none"):
        tool_choice = choice
    elif isinstance(choice, dict):
        if not any(f["name"] == choice.get("name") for f in functions):
            raise invalid_request(f"`function_call` names {str(choice.get('name'))[:64]!r}, which is not in "
                                  "`functions`.", param="function_call")
        tool_choice = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise invalid_request('`function_call` must be "none", "auto" or {"name": ...}.', param="function_call")
    return {**body, "tools": tools, "tool_choice": tool_choice}


# -- messages --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Turns:
    """What message translation needs besides the messages."""

    model: str  # MiMo's
    asked: Any  # the client's `model`, named in errors
    thinking: bool
    warnings: list[str]
    legacy_calls: dict[str, list[str]] = field(default_factory=dict)  # name -> ids of legacy calls not answered


def _messages(raw: Any, turns: _Turns) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        raise invalid_request("`messages` must be a non-empty array.", param="messages")
    return _paired([_message(m, i, turns) for i, m in enumerate(raw)], turns)


def _message(msg: Any, i: int, turns: _Turns) -> dict:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise invalid_request(f"`{where}` must be an object.", param=where)
    role = msg.get("role")
    if role not in _ROLES:
        raise invalid_request(f"`{where}.role` must be one of system, developer, user, assistant, tool, function.",
                              param=f"{where}.role")
    content, warnings = msg.get("content"), turns.warnings
    if role == "user":
        return {"role": role, "content": _user_content(content, where, turns)}
    if role == "tool":
        call_id = msg.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid_request(f"`{where}.tool_call_id` is required.", param=f"{where}.tool_call_id")
        return {"role": "tool", "tool_call_id": call_id, "content": _flat_text(content, where, warnings)}
    if role == "function":  # the legacy result of a `function_call`: answers that call by name
        name = msg.get("name")
        if not isinstance(name, str) or not name:
            raise invalid_request(f"`{where}.name` is required.", param=f"{where}.name")
        pending = turns.legacy_calls.get(name)
        call_id = pending.pop(0) if pending else f"{name} (no matching function_call)"
        return {"role": "tool", "tool_call_id": call_id, "content": _flat_text(content, where, warnings)}
    if role != "assistant":
        return {"role": "system", "content": _flat_text(content, where, warnings)}
    return _assistant(msg, i, turns)


def _assistant(msg: dict, i: int, turns: _Turns) -> dict:
    where = f"messages[{i}]"
    out: dict[str, Any] = {"role": "assistant"}
    calls = _tool_calls(msg.get("tool_calls"), where)
    legacy = msg.get("function_call")
    if legacy is not None and not calls:  # the deprecated one-call form
        calls = _tool_calls([{"id": f"call_legacy_{i}", "function": legacy}], where, param="function_call")
        turns.legacy_calls.setdefault(calls[0]["function"]["name"], []).append(calls[0]["id"])
    content = msg.get("content")
    if content is not None or not calls:  # never `content: null`
        out["content"] = _flat_text(content, where, turns.warnings)
    reasoning = msg.get("reasoning_content")
    if not isinstance(reasoning, str) or not reasoning:
        reasoning = msg.get("reasoning") if isinstance(msg.get("reasoning"), str) else None
    if reasoning:
        out["reasoning_content"] = reasoning
    if calls:
        out["tool_calls"] = calls
        if turns.thinking and not reasoning:  # MiMo 400s on tool-call turns without their reasoning
            out["reasoning_content"] = PLACEHOLDER_REASONING
    return out


def _paired(messages: list[dict], turns: _Turns) -> list[dict]:
    """The history as MiMo accepts it (it 400s otherwise), repaired as the Responses path repairs
    it: every tool call answered by exactly one tool message right after its assistant turn (the
    client's, wherever it sat, else a note that no output was recorded); a tool message whose call
    is not in the history (or that answers an answered call) kept as user text, never dropped; a
    call id used again in a later turn dropped there."""
    called: set[str] = set()
    for i, message in enumerate(messages):
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        if not calls:
            continue
        fresh = []
        for call in calls:
            if call["id"] not in called:
                called.add(call["id"])
                fresh.append(call)
        if len(fresh) < len(calls):
            turns.warnings.append(f"messages[{i}]: dropped a tool call whose id was already used")
            messages[i] = _without_calls(message, fresh)
    outputs: dict[str, int] = {}  # call id -> the tool message answering it
    for i, message in enumerate(messages):
        if message["role"] == "tool" and message["tool_call_id"] in called:
            outputs.setdefault(message["tool_call_id"], i)
    out: list[dict] = []
    for i, message in enumerate(messages):
        if message["role"] == "tool":
            if outputs.get(message["tool_call_id"]) != i:
                turns.warnings.append(f"messages[{i}]: a tool message without its call was kept as user text")
                out.append({"role": "user", "content": f"Output of tool call {message['tool_call_id']}:\n"
                                                       f"{message['content'] or _mimo.EMPTY_OUTPUT}"})
            continue
        out.append(message)
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        for call in calls or ():
            answer = outputs.get(call["id"])
            if answer is None:
                turns.warnings.append(f"messages[{i}]: a tool call without its result got a note instead")
            out.append({"role": "tool", "tool_call_id": call["id"],
                        "content": messages[answer]["content"] if answer is not None else _mimo.NO_OUTPUT})
    return out


def _without_calls(message: dict, calls: list[dict]) -> dict:
    message = {k: v for k, v in message.items() if k != "tool_calls"}
    if calls:
        message["tool_calls"] = calls
    else:
        message.setdefault("content", "")  # never `content: null`
        if message.get("reasoning_content") == PLACEHOLDER_REASONING:
            del message["reasoning_content"]
    return message


def _tool_calls(raw: Any, where: str, param: str = "tool_calls") -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid_request(f"`{where}.tool_calls` must be an array.", param=f"{where}.tool_calls")
    calls = []
    for j, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            at = f"{where}.{param}" if param != "tool_calls" else f"{where}.tool_calls[{j}]"
            raise invalid_request(f"`{at}` needs an id and a function name.", param=at)
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
    """System, assistant and tool content as one string (MiMo answers a tool message whose
    content is a list with 400 "`text` is not set")."""
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


def _user_content(content: Any, where: str, turns: _Turns) -> Any:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict] = []
    for j, part in enumerate(_parts(content, where)):
        kind = part.get("type")
        if kind == "text":
            if isinstance(part.get("text"), str) and part["text"]:  # empty text parts 400 upstream
                parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = _image(part.get("image_url"), f"{where}.content[{j}]")
            if not supports_images(turns.model):
                raise _mimo.media_refused("image", turns.model, turns.asked, f"{where}.content[{j}]")
            parts.append({"type": "image_url", "image_url": image})
        elif kind in ("input_audio", "audio_url"):
            if not supports_images(turns.model):  # text-only models take neither
                raise _mimo.media_refused("audio", turns.model, turns.asked, f"{where}.content[{j}]")
            parts.append(part)
        else:
            parts.append({"type": "text", "text": f"[{kind or 'unknown'} content omitted]"})
            turns.warnings.append(f"{where}: {kind!r} part replaced by a text marker")
    if not parts:
        return ""
    if not any(p["type"] == "text" for p in parts):
        parts.append({"type": "text", "text": " "})  # MiMo 400s on a media message without a text part
    return parts


def _image(value: Any, where: str) -> dict:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) or not value["url"]:
        raise invalid_request(f"`{where}.image_url.url` is required.", param=f"{where}.image_url")
    return {k: value[k] for k in ("url", "detail") if value.get(k) is not None}
