"""Pieces of the Responses `response` object and its output items (pure).

Shared by the stream translator; everything here builds fresh dicts and never mutates
its inputs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from .. import _json
from .._usage import token_counts

_SERVICE_TIERS = frozenset({"default", "flex", "priority", "scale"})


def new_id(prefix: str) -> str:
    """`<prefix>_<24 hex>`: the conventional shape of Responses ids."""
    return f"{prefix}_{secrets.token_hex(12)}"


def _given(request: Mapping[str, Any], key: str, default: Any) -> Any:
    value = request.get(key)
    return default if value is None else value


def _number(request: Mapping[str, Any], key: str, default: float) -> float:
    value = request.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return default


def _reasoning(request: Mapping[str, Any]) -> dict[str, Any] | None:
    value = request.get("reasoning")
    if not isinstance(value, dict):
        return None
    summary = value.get("summary", value.get("generate_summary"))
    return {"effort": value.get("effort"), "summary": summary}


def _text(request: Mapping[str, Any]) -> dict[str, Any]:
    value = request.get("text")
    merged: dict[str, Any] = {"format": {"type": "text"}}
    if isinstance(value, dict):
        merged.update({k: v for k, v in value.items() if v is not None})
    fmt = merged["format"]
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and not fmt.get("name"):
        merged["format"] = {**fmt, "name": "response"}  # the schema's name is required in a Response
    return merged


def _tool(tool: Any) -> Any:
    """A function tool as a Response lists it: every field present, `strict` defaulting to true
    (OpenAI's default for Responses function tools); other tools as the client sent them."""
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        return tool
    strict = tool.get("strict")
    return {**tool, "type": "function", "description": tool.get("description"),
            "parameters": tool.get("parameters"), "strict": strict if isinstance(strict, bool) else True}


def _chosen(tool: Any) -> Any:
    """`{"type": "function", "name": ...}` for a function named in either API's shape."""
    if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        return {"type": "function", "name": tool["function"].get("name")}
    return tool


def _tool_choice(request: Mapping[str, Any]) -> Any:
    """The client's tool_choice in the Response's shape (the Chat shapes are accepted too)."""
    choice = _given(request, "tool_choice", "auto")
    if not isinstance(choice, dict):
        return choice
    if choice.get("type") != "allowed_tools":
        return _chosen(choice)
    nested = choice.get("allowed_tools")
    spec = nested if isinstance(nested, dict) else choice
    tools = spec.get("tools")
    listed = [_chosen(t) for t in tools] if isinstance(tools, list) else []
    return {"type": "allowed_tools", "mode": spec.get("mode") or "auto", "tools": listed}


def echo_parameters(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request parameters a `response` object repeats, with OpenAI's defaults filled in."""
    tier = request.get("service_tier")
    metadata = request.get("metadata")
    tools = request.get("tools")
    top_logprobs = request.get("top_logprobs")
    return {
        "instructions": request.get("instructions"),
        "tools": [_tool(t) for t in tools] if isinstance(tools, list) else [],
        "tool_choice": _tool_choice(request),
        "parallel_tool_calls": bool(_given(request, "parallel_tool_calls", True)),
        "text": _text(request),
        "reasoning": _reasoning(request),
        "temperature": _number(request, "temperature", 1.0),
        "top_p": _number(request, "top_p", 1.0),
        "presence_penalty": _number(request, "presence_penalty", 0.0),
        "frequency_penalty": _number(request, "frequency_penalty", 0.0),
        "top_logprobs": top_logprobs if isinstance(top_logprobs, int) and not isinstance(top_logprobs, bool) else 0,
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "truncation": _given(request, "truncation", "disabled"),
        "store": bool(_given(request, "store", True)),
        "background": False,
        "service_tier": tier if tier in _SERVICE_TIERS else "default",
        "metadata": dict(metadata) if isinstance(metadata, dict) else {},
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "safety_identifier": request.get("safety_identifier"),
        "user": request.get("user"),
    }


def snapshot(
    *,
    response_id: str,
    created_at: int,
    model: str,
    echo: Mapping[str, Any],
    status: str,
    output: list[dict[str, Any]],
    completed_at: int | None = None,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete `response` object (every field Open Responses requires is present)."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": incomplete_details,
        "model": model,
        "output": output,
        **echo,
        "usage": usage,
    }


def map_usage(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """MiMo chat usage -> Responses usage, from the counts `token_counts` reads (the same numbers
    the log line, metrics and `on_usage` get).

    `cache_write_tokens` is included because the openai SDK's model requires it;
    MiMo does not report cache writes, so it is 0.
    """
    counts = token_counts(raw)
    return {
        "input_tokens": counts["input_tokens"],
        "input_tokens_details": {"cached_tokens": counts["cached_tokens"], "cache_write_tokens": 0},
        "output_tokens": counts["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": counts["reasoning_tokens"]},
        "total_tokens": counts["total_tokens"],
    }


def url_citation(raw: Any) -> dict[str, Any] | None:
    """A MiMo web-search annotation (flat, or OpenAI's nested shape) as a Responses url_citation.

    MiMo gives no character range, so both indexes are 0.
    """
    if not isinstance(raw, dict):
        return None
    inner = raw.get("url_citation")
    source = inner if isinstance(inner, dict) else raw
    url = source.get("url")
    if not isinstance(url, str) or not url:
        return None
    title = source.get("title")
    return {
        "type": "url_citation",
        "url": url,
        "title": title if isinstance(title, str) else "",
        "start_index": 0,
        "end_index": 0,
    }


def web_search_item(item_id: str, urls: list[str]) -> dict[str, Any]:
    return {
        "type": "web_search_call",
        "id": item_id,
        "status": "completed",
        "action": {"type": "search", "query": "", "sources": [{"type": "url", "url": u} for u in urls]},
    }


def parse_arguments(arguments: str) -> Any:
    """The arguments as JSON, or None when they are not valid JSON."""
    try:
        return _json.loads(arguments)
    except _json.JSONDecodeError:
        return None


def shell_action(arguments: str) -> dict[str, Any]:
    """The `exec` action of a local_shell_call from the arguments MiMo gave the `shell` function.

    Accepts `command` as an argv list or a string (run with `bash -lc`), `workdir` or
    `working_directory`, and `timeout_ms` or `timeout`.
    """
    args = parse_arguments(arguments)
    args = args if isinstance(args, dict) else {}
    command = args.get("command")
    if isinstance(command, str):
        command = ["bash", "-lc", command]
    elif not isinstance(command, list):
        command = []
    workdir = args.get("workdir", args.get("working_directory"))
    timeout = args.get("timeout_ms", args.get("timeout"))
    return {
        "type": "exec",
        "command": [str(part) for part in command],
        "working_directory": workdir if isinstance(workdir, str) else None,
        "timeout_ms": int(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else None,
        "env": {},
    }


def tool_search_arguments(arguments: str) -> Any:
    """Codex's tool_search_call carries its arguments as a JSON value, not a string."""
    args = parse_arguments(arguments)
    return args if isinstance(args, dict) else {}


def custom_input(arguments: str) -> str:
    """The freeform input: the `input` string of `{"input": ...}`, else the raw arguments."""
    args = parse_arguments(arguments)
    if isinstance(args, dict) and isinstance(args.get("input"), str):
        return args["input"]
    return arguments
