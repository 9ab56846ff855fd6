"""Responses tool declarations -> MiMo chat `tools` (pure).

Every client tool becomes one upstream function (or MiMo's native `web_search`),
under a name that matches `^[a-zA-Z0-9_-]{1,64}$` and is unique in the request.
`ToolNames` remembers which client identity each upstream name stands for, so the
history items and the stream translator use the same names both ways.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from ._mimo import native_web_search
from ._tools import Entry, Key, ToolSpec
from .errors import OpenAIError, invalid_request

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64
_WEB_SEARCH = re.compile(r"^web_search(?:_preview)?(?:_\d{4}_\d{2}_\d{2})?$")
_MAX_GRAMMAR = 4000

_SHELL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "array", "items": {"type": "string"},
                    "description": "The command and its arguments, e.g. [\"bash\", \"-lc\", \"ls -la\"]."},
        "workdir": {"type": "string", "description": "Working directory to run the command in."},
        "timeout_ms": {"type": "number", "description": "Time limit for the command in milliseconds."},
    },
    "required": ["command"],
}
_SHELL_DESCRIPTION = "Runs a command on the user's machine and returns its output."
_SHELL_NAMES = ("shell", "local_shell")
_TOOL_SEARCH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "Search query for tools."},
        "limit": {"type": "number", "description": "Maximum number of tools to return."},
    },
    "required": ["query"],
}

LOCAL_SHELL: Key = ("local_shell", None, None)
TOOL_SEARCH: Key = ("tool_search", None, None)


def function_key(name: str, namespace: str | None = None) -> Key:
    return ("fn", namespace, name)


def encode_name(name: str, namespace: str | None = None) -> str:
    """`<namespace>__<name>`, unsafe characters replaced, hash-truncated past 64 chars."""
    raw = f"{namespace}__{name}" if namespace else name
    safe = _UNSAFE.sub("_", raw) or "_"
    if len(safe) <= _MAX_NAME:
        return safe
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{safe[:_MAX_NAME - 17]}_{digest}"


def _suffixed(name: str, n: int) -> str:
    suffix = f"_{n}"
    return name[:_MAX_NAME - len(suffix)] + suffix


@dataclass(slots=True)
class ToolNames:
    """upstream name <-> client identity, unique upstream names, first claim wins."""

    by_key: dict[Key, str] = field(default_factory=dict)
    specs: dict[str, ToolSpec] = field(default_factory=dict)

    def copy(self) -> ToolNames:
        return ToolNames(dict(self.by_key), dict(self.specs))

    def claim(self, key: Key, spec: ToolSpec, *preferred: str) -> str | None:
        """A fresh upstream name for `key` (the first free preferred one, else a numbered
        variant of the first), or None when `key` already has one."""
        if key in self.by_key:
            return None
        name = next((p for p in preferred if p not in self.specs), None)
        n = 2
        while name is None or name in self.specs:
            name, n = _suffixed(preferred[0], n), n + 1
        self.by_key[key] = name
        self.specs[name] = spec
        return name

    def resolve(self, key: Key, spec: ToolSpec, *preferred: str) -> str:
        """The upstream name of `key`, claiming one if the request never declared it."""
        return self.by_key.get(key) or self.claim(key, spec, *preferred) or preferred[0]

    def function(self, name: str, namespace: str | None, kind: str = "function") -> str:
        spec = ToolSpec(kind, name, namespace)  # type: ignore[arg-type]
        return self.resolve(function_key(name, namespace), spec, encode_name(name, namespace))

    def local_shell(self) -> str:
        return self.resolve(LOCAL_SHELL, ToolSpec("local_shell", "local_shell"), *_SHELL_NAMES)

    def tool_search(self) -> str:
        return self.resolve(TOOL_SEARCH, ToolSpec("tool_search", "tool_search"), "tool_search")


@dataclass(slots=True)
class DeclaredTools:
    entries: list[Entry]
    web_search: dict[str, Any] | None  # the client's tool, when native search was not allowed


class _Unsupported(Exception):
    pass


def _opt_str(tool: dict[str, Any], key: str, param: str) -> str | None:
    value = tool.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise invalid_request(f"'{key}' must be a string.", param=f"{param}.{key}")


def _req_name(tool: dict[str, Any], param: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid_request("Tool 'name' must be a non-empty string.", param=f"{param}.name")
    return name


def _function_tool(name: str, description: str | None, parameters: dict[str, Any]) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    if description:
        fn["description"] = description
    fn["parameters"] = parameters
    return {"type": "function", "function": fn}


def _function(tool: dict[str, Any], param: str, namespace: str | None) -> Entry:
    name = _req_name(tool, param)
    parameters = tool.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    elif not isinstance(parameters, dict):
        raise invalid_request("Tool 'parameters' must be a JSON Schema object.", param=f"{param}.parameters")
    chat = _function_tool("", _opt_str(tool, "description", param), parameters)
    return Entry(chat, "function", ToolSpec("function", name, namespace), function_key(name, namespace),
                 (encode_name(name, namespace),))


def _custom(tool: dict[str, Any], param: str, namespace: str | None) -> Entry:
    name = _req_name(tool, param)
    description = _opt_str(tool, "description", param) or ""
    fmt = tool.get("format")
    if fmt is not None and not isinstance(fmt, dict):
        raise invalid_request("Custom tool 'format' must be an object.", param=f"{param}.format")
    input_help = "The raw freeform input for this tool as plain text (not JSON)."
    if fmt and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") if isinstance(fmt.get("syntax"), str) else "grammar"
        definition = fmt["definition"]
        if len(definition) > _MAX_GRAMMAR:
            definition = definition[:_MAX_GRAMMAR] + "\n... (grammar truncated)"
        description = (f"{description}\n\nThe `input` argument must follow this {syntax} grammar:\n"
                       f"{definition}").lstrip()
        input_help = (f"The raw freeform input for this tool, written in the {syntax} grammar given in the "
                      "tool description (not JSON).")
    parameters = {"type": "object", "properties": {"input": {"type": "string", "description": input_help}},
                  "required": ["input"]}
    chat = _function_tool("", description or None, parameters)
    return Entry(chat, "custom", ToolSpec("custom", name, namespace), function_key(name, namespace),
                 (encode_name(name, namespace),))


def _local_shell(tool: dict[str, Any], param: str) -> Entry:
    chat = _function_tool("", _SHELL_DESCRIPTION, copy.deepcopy(_SHELL_PARAMETERS))
    return Entry(chat, "local_shell", ToolSpec("local_shell", "local_shell"), LOCAL_SHELL, _SHELL_NAMES, True)


def _tool_search(tool: dict[str, Any], param: str) -> Entry:
    if tool.get("execution") not in (None, "client"):
        raise _Unsupported()  # server-side tool search runs at OpenAI only
    parameters = tool.get("parameters")
    if parameters is None:
        parameters = copy.deepcopy(_TOOL_SEARCH_PARAMETERS)
    elif not isinstance(parameters, dict):
        raise invalid_request("Tool 'parameters' must be a JSON Schema object.", param=f"{param}.parameters")
    chat = _function_tool("", _opt_str(tool, "description", param), parameters)
    return Entry(chat, "tool_search", ToolSpec("tool_search", "tool_search"), TOOL_SEARCH, ("tool_search",), True)


def _inner(tool: Any, param: str, namespace: str | None) -> list[Entry]:
    if not isinstance(tool, dict):
        raise invalid_request("Each tool must be an object.", param=param)
    kind = tool.get("type", "function")
    if not isinstance(kind, str):
        raise invalid_request("Tool 'type' must be a string.", param=f"{param}.type")
    if kind == "function":
        return [_function(tool, param, namespace)]
    if kind == "custom":
        return [_custom(tool, param, namespace)]
    if namespace is None:
        if kind == "local_shell":
            return [_local_shell(tool, param)]
        if kind == "tool_search":
            return [_tool_search(tool, param)]
        if _WEB_SEARCH.match(kind):
            return [Entry(native_web_search(tool), "web_search")]
        if kind == "namespace":
            return _namespace(tool, param)
    raise _Unsupported()


def _namespace(tool: dict[str, Any], param: str) -> list[Entry]:
    namespace = _req_name(tool, param)
    inner = tool.get("tools")
    if not isinstance(inner, list):
        raise invalid_request("Namespace 'tools' must be an array.", param=f"{param}.tools")
    out: list[Entry] = []
    for j, t in enumerate(inner):
        out.extend(_inner(t, f"{param}.tools[{j}]", namespace))
    return out


def _entries(tool: Any, param: str, drop_unsupported: bool, warnings: list[str]) -> list[Entry]:
    try:
        return _inner(tool, param, None)
    except _Unsupported:
        pass
    kind = str(tool.get("type", "function"))[:64] if isinstance(tool, dict) else "?"
    if drop_unsupported:
        warnings.append(f"dropped tool {param} of type {kind!r}: MiMo cannot run it")  # repr: one log line
        return []
    raise invalid_request(f"Tool type '{kind}' is not supported for MiMo-routed requests.",
                          param=param, code="unsupported_tool")


def name_entries(entries: list[Entry], names: ToolNames, warnings: list[str]) -> list[Entry]:
    """Give every entry its upstream name (client-named tools first), dropping duplicates."""
    kept: dict[int, Entry] = {}
    web_search_seen = False
    for builtin_pass in (False, True):
        for i, entry in enumerate(entries):
            if entry.spec is None:
                if not builtin_pass:
                    if web_search_seen:
                        warnings.append("dropped a duplicate web_search tool")
                        continue
                    web_search_seen = True
                    kept[i] = entry
                continue
            if entry.builtin != builtin_pass:
                continue
            assert entry.key is not None
            name = names.claim(entry.key, entry.spec, *entry.preferred)
            if name is None:
                warnings.append(f"dropped duplicate tool '{entry.preferred[0]}'")
                continue
            entry.tool["function"]["name"] = name
            kept[i] = entry
    return [kept[i] for i in sorted(kept)]


def declare_tools(
    tools: Any, names: ToolNames, *, native_web_search_ok: bool, drop_unsupported: bool, warnings: list[str],
) -> DeclaredTools:
    """Translate the request's `tools`; web_search becomes native or is set aside."""
    if tools is None:
        return DeclaredTools([], None)
    if not isinstance(tools, list):
        raise invalid_request("'tools' must be an array.", param="tools")
    entries: list[Entry] = []
    set_aside: dict[str, Any] | None = None
    for i, tool in enumerate(tools):
        for entry in _entries(tool, f"tools[{i}]", drop_unsupported, warnings):
            if entry.spec is None and not native_web_search_ok:
                set_aside = set_aside or tool
                continue
            entries.append(entry)
    return DeclaredTools(name_entries(entries, names, warnings), set_aside)


def load_tools(tools: Any, names: ToolNames, warnings: list[str]) -> list[Entry]:
    """Tools a `tool_search_output` made callable; anything unusable is skipped, never an error."""
    if not isinstance(tools, list):
        return []
    entries: list[Entry] = []
    for i, tool in enumerate(tools):
        try:
            entries.extend(e for e in _inner(tool, f"tool_search_output.tools[{i}]", None) if e.spec is not None)
        except (OpenAIError, _Unsupported):  # a loaded tool we cannot express is just not offered
            warnings.append("skipped a tool loaded by tool_search that MiMo cannot run")
    return name_entries(entries, names, warnings)
