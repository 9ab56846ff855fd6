"""MiMo's request rules for `POST /v1/chat/completions` (pure): each rule is a function that
raises `Rejection` with the status and body MiMo answers. docs/mimo.md states the rules and
where they come from."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import _json
from .._models import supports_images, thinking_by_default
from ._script import error_body, mimo_error

MAX_COMPLETION_TOKENS = 131072
ALLOWED_PARAMS = frozenset(
    {
        "model", "messages", "max_completion_tokens", "max_tokens", "temperature", "top_p", "stream",
        "stop", "frequency_penalty", "presence_penalty", "response_format", "thinking", "tools",
        "tool_choice", "stream_options", "parallel_tool_calls", "reasoning_effort",
    }
)  # fmt: skip
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
EFFORTS = ("low", "medium", "high")
PASS_BACK = "The reasoning_content in the thinking mode must be passed back to the API."
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_RANGES = (("temperature", 0, 2), ("top_p", 0, 1), ("presence_penalty", -2, 2), ("frequency_penalty", -2, 2))
_USER_PARTS = frozenset({"text", "image_url", "input_audio", "audio_url"})


class Rejection(Exception):
    """MiMo refused the request: `status` and the JSON `body` it sends."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.body = dict(body)


@dataclass(frozen=True)
class Host:
    """What the host being faked serves: its model ids and whether web search is activated."""

    models: frozenset[str]
    web_search_plugin: bool


def incorrect(detail: str, status: int = 400) -> Rejection:
    """The usual shape: message "Param Incorrect", the detail in `param`."""
    return Rejection(status, mimo_error(status, "Param Incorrect", detail))


def thinking_on(body: Mapping[str, Any]) -> bool:
    """Whether the request runs in thinking mode (explicit `thinking`, else the model default)."""
    thinking = body.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "disabled"):
        return thinking["type"] == "enabled"
    model = body.get("model")
    return thinking_by_default(model) if isinstance(model, str) else True


# --- top level ---------------------------------------------------------------------------------


def check_body(body: Any, host: Host) -> None:
    if not isinstance(body, dict):
        raise incorrect("Request body must be a JSON object")


def check_model(body: dict[str, Any], host: Host) -> None:
    """Unknown ids, and known ids in another case, are "Not supported model X" (message and
    param in this order, as reported for the OpenAI-compatible endpoint)."""
    model = body.get("model")
    if not isinstance(model, str) or model not in host.models:
        raise Rejection(400, mimo_error(400, f"Not supported model {model}", "Param Incorrect"))


def check_params(body: dict[str, Any], host: Host) -> None:
    """Only the top-level fields MiMo documents or is seen to accept (docs/mimo.md, "Request
    fields"); `enable_thinking`, `user`, `n`, ... are refused."""
    for name in body:
        if name not in ALLOWED_PARAMS:
            raise incorrect(f"Unrecognized request argument supplied: {name}")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise incorrect("stream: Input should be a valid boolean")


def check_reasoning_effort(body: dict[str, Any], host: Host) -> None:
    """A strict literal low|medium|high; `minimal` is reported to give 500 instead of 400."""
    if "reasoning_effort" not in body:
        return
    effort = body["reasoning_effort"]
    if effort in EFFORTS:
        return
    detail = (
        f"[{{'type': 'literal_error', 'loc': ('body', 'reasoning_effort'), "
        f"'msg': \"Input should be 'low', 'medium' or 'high'\", 'input': {effort!r}, "
        f"'ctx': {{'expected': \"'low', 'medium' or 'high'\"}}}}]"
    )
    if effort == "minimal":
        raise Rejection(500, mimo_error(500, detail, "", "Internal Server Error"))
    raise incorrect(detail)


def check_thinking(body: dict[str, Any], host: Host) -> None:
    if "thinking" not in body:
        return
    thinking = body["thinking"]
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled") or len(thinking) != 1:
        raise incorrect("thinking: Input should be {'type': 'enabled'} or {'type': 'disabled'}")


def check_max_tokens(body: dict[str, Any], host: Host) -> None:
    for name in ("max_completion_tokens", "max_tokens"):
        if name not in body:
            continue
        value = body[name]
        if not _is_int(value) or not 1 <= value <= MAX_COMPLETION_TOKENS:
            raise incorrect(f"{name} must be an integer in [1, {MAX_COMPLETION_TOKENS}], got {value!r}")


def check_sampling(body: dict[str, Any], host: Host) -> None:
    for name, low, high in _RANGES:
        if name in body and (not _is_number(body[name]) or not low <= body[name] <= high):
            raise incorrect(f"{name} must be a number in [{low}, {high}], got {body[name]!r}")
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 4:
        raise incorrect("stop: at most 4 sequences")


def check_response_format(body: dict[str, Any], host: Host) -> None:
    """Only JSON mode is documented; `json_schema` is refused here on purpose (stricter than
    proven: a translator must downgrade it to `json_object`)."""
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object")):
        raise incorrect(f"response_format: unsupported type {fmt!r}")


# --- tools --------------------------------------------------------------------------------------


def check_tools(body: dict[str, Any], host: Host) -> None:
    """Tool types, names, `strict`, duplicates, and `web_search` only where the account's web
    search plugin is activated (docs/mimo.md, "Tools")."""
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise incorrect("tools: Input should be a valid list")
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "web_search":
            if not host.web_search_plugin:
                raise incorrect("web search plugin is not activated: webSearchEnabled is false")
            continue
        if kind != "function":
            raise incorrect(f"tools.{i}.type: Input should be 'function' or 'web_search', got {kind!r}")
        name = _check_function_tool(tool, i)
        if name in seen:
            raise incorrect(f"tools contains duplicate names: {name}")
        seen.add(name)


def _check_function_tool(tool: dict[str, Any], i: int) -> str:
    function = tool.get("function")
    if not isinstance(function, dict):
        raise incorrect(f"tools.{i}.function: Field required")
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise incorrect(f"tools.{i}.function.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
    if "strict" in function and not isinstance(function["strict"], bool):
        raise incorrect(f"tools.{i}.function.strict: Input should be a valid boolean")
    if "parameters" in function and not isinstance(function["parameters"], dict):
        raise incorrect(f"tools.{i}.function.parameters: Input should be a valid dictionary")
    return name


# --- messages -----------------------------------------------------------------------------------


def check_messages(body: dict[str, Any], host: Host) -> None:
    """Roles, content shapes, tool call arguments, images (docs/mimo.md, "Message rules")."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise incorrect("messages: Field required (a non-empty list)")
    model = body["model"]
    for message in messages:
        if not isinstance(message, dict):
            raise incorrect("messages: each message must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise incorrect(f"Unknown role: {role}")
        if role == "assistant":
            _check_assistant(message)
        elif role == "tool":
            _check_tool_message(message)
        else:
            _check_content(message, role, model)


def _check_content(message: dict[str, Any], role: str, model: str) -> None:
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise incorrect("`text` is not present")
    allowed = _USER_PARTS if role == "user" else frozenset({"text"})
    has_text = has_image = False
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise incorrect(f"Unsupported content part type {kind!r} for role {role}")
        if kind == "text":
            _check_text_part(part)
            has_text = True
        has_image = has_image or kind == "image_url"
    if has_image and not supports_images(model):
        raise Rejection(404, error_body(404, "No endpoints found that support image input"))
    if has_image and not has_text:
        raise incorrect("`text` is not set")


def _check_text_part(part: dict[str, Any]) -> None:
    text = part.get("text")
    if not isinstance(text, str) or not text:
        raise incorrect("`text` is not set")


def _check_assistant(message: dict[str, Any]) -> None:
    tool_calls = message.get("tool_calls")
    if "content" in message or not tool_calls:
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise incorrect("assistant content parts must be text")
                _check_text_part(part)
        elif not isinstance(content, str):
            raise incorrect("`text` is not present")
    reasoning = message.get("reasoning_content")
    if reasoning is not None and not isinstance(reasoning, str):
        raise incorrect("reasoning_content: Input should be a valid string")
    if tool_calls is not None:
        _check_tool_calls(tool_calls)


def _check_tool_calls(tool_calls: Any) -> None:
    if not isinstance(tool_calls, list):
        raise incorrect("tool_calls: Input should be a valid list")
    for call in tool_calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise incorrect("tool_calls: each call needs an id and a function")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise incorrect("tool_calls.function.name: Field required")
        arguments = function.get("arguments")
        if not isinstance(arguments, str) or not _is_json(arguments):
            raise incorrect(f"tool_calls.function.arguments must be a valid JSON string: {arguments!r}")


def _check_tool_message(message: dict[str, Any]) -> None:
    if not isinstance(message.get("content"), str):
        raise incorrect("`text` is not set")
    if not isinstance(message.get("tool_call_id"), str):
        raise incorrect("tool_call_id: Field required")


def check_tool_pairing(body: dict[str, Any], host: Host) -> None:
    """Each assistant tool call is answered by the tool messages right after it; a tool
    message answers a call of the assistant turn right before it."""
    waiting: set[str] = set()
    answering = False
    for message in body["messages"]:
        if message["role"] == "tool":
            call_id = message["tool_call_id"]
            if not answering or call_id not in waiting:
                raise incorrect(
                    "Messages with role 'tool' must be a response to a preceding message with "
                    f"'tool_calls' (tool_call_id {call_id})"
                )
            waiting.discard(call_id)
            continue
        _raise_unanswered(waiting)
        calls = message.get("tool_calls") if message["role"] == "assistant" else None
        waiting = {call["id"] for call in calls} if calls else set()
        answering = bool(calls)
    _raise_unanswered(waiting)


def _raise_unanswered(waiting: set[str]) -> None:
    if waiting:
        raise incorrect(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(sorted(waiting))}"
        )


def check_reasoning_pass_back(body: dict[str, Any], host: Host) -> None:
    """In thinking mode every replayed assistant turn with tool calls carries its reasoning."""
    if not thinking_on(body):
        return
    for message in body["messages"]:
        if message["role"] == "assistant" and message.get("tool_calls"):
            reasoning = message.get("reasoning_content")
            if not isinstance(reasoning, str) or not reasoning:
                raise incorrect(PASS_BACK)


Rule = Callable[[dict[str, Any], Host], None]
# Order matters: later rules rely on the shapes earlier ones checked.
RULES: tuple[Rule, ...] = (
    check_body,
    check_model,
    check_params,
    check_reasoning_effort,
    check_thinking,
    check_max_tokens,
    check_sampling,
    check_response_format,
    check_tools,
    check_messages,
    check_tool_pairing,
    check_reasoning_pass_back,
)


def validate(body: Any, host: Host, rules: Iterable[Rule] = RULES) -> Rejection | None:
    """The first rule the request breaks, or None when MiMo would accept it."""
    try:
        for rule in rules:
            rule(body, host)
    except Rejection as rejection:
        return rejection
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_json(text: str) -> bool:
    try:
        _json.loads(text)
    except _json.JSONDecodeError:
        return False
    return True
