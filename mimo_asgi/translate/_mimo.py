"""MiMo's rules for a request, one copy for both translators (pure).

What MiMo accepts, and how a client's request is bent to it, whichever API the client spoke:
thinking and effort, sampling while thinking, the output-token cap, the lines we add to the
prompt (the must-call line, the JSON Schema line) and where they go, the tool choice MiMo cannot
enforce, MiMo's native `web_search` tool, the images and audio a text-only model refuses, the
texts a repaired tool history uses, and the fields MiMo has no place for (refused, or dropped
and said once per process). `chat.py` and `responses_request.py` only read their API's shapes
and call these.

Differences between the two paths that are kept on purpose:
- Chat reads MiMo's own `thinking` object (MiMo-aware clients send it) before `reasoning_effort`;
  Responses has only `reasoning.effort`.
- Chat keeps a non-stream request non-stream; Responses always streams from MiMo (its events are
  built from the chunks, and a non-stream client gets the finished response).
- Errors name the field the client sent: `reasoning_effort` or `reasoning.effort`, `max_tokens`
  or `max_output_tokens`, `response_format` or `text.format`.
- Chat takes its tools in the Chat shape and refuses `custom` tools (its clients read calls back
  as `tool_calls`, with JSON arguments); Responses has custom, namespace and Codex's builtins.
- Chat answers a request that used the deprecated `functions` in that shape (`function_call`).
- Which fields have no MiMo place differs with the API (see docs/request-fields.md): Chat has
  `seed`, `logit_bias`, audio output; Responses `truncation`, `include`, a response store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import _json
from .._models import fixes_sampling_when_thinking, thinking_by_default
from ._tools import Entry
from .errors import OpenAIError, invalid_request

MAX_COMPLETION_TOKENS = 131072  # MiMo refuses larger values with a 400; no model writes more anyway
# MiMo accepts only low / medium / high (and treats them alike); `none` means thinking off.
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# A replayed tool-call turn must carry its reasoning while thinking is on, or MiMo answers 400;
# when the real text is lost this stands in for it (MiMo accepts any non-empty text).
PLACEHOLDER_REASONING = "(this turn ran without thinking mode)"
NO_OUTPUT = "No output was recorded for this tool call."
EMPTY_OUTPUT = "(empty output)"
MUST_CALL_ANY = "You must call at least one of the available tools in your next response; do not answer with text only."
_SAMPLING = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
_FIXED_WHILE_THINKING = ("temperature", "top_p")  # MiMo forces 1.0 / 0.95 for some models
_SEARCH_OPTIONS = ("max_keyword", "force_search", "limit")  # what MiMo's web_search tool documents
_LOCATION = ("country", "region", "city")


# -- fields with no MiMo place ---------------------------------------------------------------------

# The fields already said to be dropped in this process (each is said once: the log would
# otherwise repeat it on every request). Keys are the gateway's own strings, never a client's.
WARNED_ONCE: set[str] = set()


def drop(warnings: list[str], key: str, why: str) -> None:
    """A field that is not sent (MiMo has no place for it), said once per process."""
    if key not in WARNED_ONCE:
        WARNED_ONCE.add(key)
        warnings.append(f"{key} is not sent to MiMo: {why} (said once per process)")


def unsupported(param: str, why: str) -> OpenAIError:
    """The 400 for a field that asks for something MiMo cannot give."""
    return invalid_request(f"'{param}' is not supported for MiMo-routed requests: {why}", param=param,
                           code="unsupported_parameter")


def top_logprobs(value: Any, param: str = "top_logprobs") -> None:
    """0 (or absent) asks for nothing; more asks for log probabilities, which MiMo does not return."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 20:
        raise invalid_request(f"'{param}' must be an integer from 0 to 20.", param=param)
    if value:
        raise unsupported(param, "MiMo does not return log probabilities.")


# -- thinking and effort ------------------------------------------------------------------------


def effort(value: Any, param: str) -> str | None:
    """The client's effort as MiMo's: "none", low / medium / high, or None when not given."""
    if value is None:
        return None
    if value == "none":
        return "none"
    if isinstance(value, str) and value in EFFORTS:
        return EFFORTS[value]
    raise invalid_request(f"Unsupported {param} {value!r}; use none, minimal, low, medium, high or xhigh.",
                          param=param)


def thinking(mimo_effort: str | None, model: str) -> bool:
    """Asking for an effort asks for thinking; `none` turns it off; no effort keeps the model's default."""
    if mimo_effort is None:
        return thinking_by_default(model)
    return mimo_effort != "none"


def set_thinking(out: dict[str, Any], on: bool, mimo_effort: str | None) -> None:
    """`thinking` always explicit; `reasoning_effort` only with thinking on (MiMo 400s on `none`)."""
    out["thinking"] = {"type": "enabled" if on else "disabled"}
    if on and mimo_effort and mimo_effort != "none":
        out["reasoning_effort"] = mimo_effort


# -- scalar parameters --------------------------------------------------------------------------


def number(body: dict[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise invalid_request(f"'{key}' must be a number.", param=key)


def positive_int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_request(f"'{param}' must be a positive integer.", param=param)
    return value


def boolean(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid_request(f"'{key}' must be a boolean.", param=key)


def max_tokens(value: Any, param: str) -> int:
    """`max_completion_tokens` for MiMo: the client's limit, capped at what MiMo accepts."""
    return min(positive_int(value, param), MAX_COMPLETION_TOKENS)


def sampling(body: dict[str, Any], out: dict[str, Any], *, on: bool, model: str, warnings: list[str]) -> None:
    """temperature, top_p, the penalties and stop, checked and copied; temperature and top_p are
    not sent while thinking on a model where MiMo fixes them (it would ignore them anyway)."""
    fixed = on and fixes_sampling_when_thinking(model)
    for key in _SAMPLING:
        value = number(body, key)
        if value is None:
            continue
        if fixed and key in _FIXED_WHILE_THINKING:
            drop(warnings, key, f"while thinking, MiMo fixes it for {model} (temperature 1.0, top_p 0.95)")
            continue
        out[key] = value
    stop = body.get("stop")
    if stop is not None:
        if not (isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))):
            raise invalid_request("'stop' must be a string or an array of strings.", param="stop")
        out["stop"] = stop


# -- images and audio ---------------------------------------------------------------------------


def media_refused(kind: str, model: str, asked: Any, param: str) -> OpenAIError:
    """The 400 for a user's image or audio sent to a model known to be text-only. (Inside tool
    outputs a marker stands in instead, so an agent's session goes on.)"""
    name = asked[:64] if isinstance(asked, str) else None
    served = f"'{name}' is served by {model}, which" if name and name != model else model
    return invalid_request(f"{served} does not accept {kind} input; remove the {kind} or use a model that "
                           "accepts it.", param=param, code=f"{kind}_input_not_supported")


# -- the lines we add to the prompt -------------------------------------------------------------


def schema_line(schema: Any, name: Any = None, description: Any = None) -> str:
    """The instruction that carries a JSON Schema: MiMo has JSON mode, not structured outputs."""
    named = f' "{name}"' if isinstance(name, str) and name else ""
    about = f" ({description})" if isinstance(description, str) and description else ""
    if schema is None:
        return "Respond with only a JSON object."
    return f"Respond with only a JSON object that conforms to the JSON Schema{named}{about}:\n{safe_dumps(schema)}"


def must_call_line(entries: Sequence[Entry]) -> str:
    """What the model is told when the client requires a tool call (MiMo treats every tool_choice as auto)."""
    if len(entries) == 1 and entries[0].spec is not None:
        return (f"You must call the `{entries[0].upstream}` tool in your next response; "
                "do not answer without calling it.")
    return MUST_CALL_ANY


def with_directives(messages: list[dict[str, Any]], lines: Sequence[str | None]) -> list[dict[str, Any]]:
    """Our lines as one system message after the client's leading system messages (the client's
    own instructions come first, the conversation after)."""
    given = [line for line in lines if line]
    if not given:
        return messages
    at = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    return [*messages[:at], {"role": "system", "content": "\n\n".join(given)}, *messages[at:]]


def safe_dumps(obj: Any) -> str:
    """Compact JSON text for any JSON-shaped value, never an encoder error."""
    try:
        return _json.dumps_str(obj)
    except (TypeError, ValueError):  # >64-bit ints, lone surrogates: the stdlib escapes them
        return json.dumps(obj)


# -- tools --------------------------------------------------------------------------------------


def native_web_search(tool: dict[str, Any]) -> dict[str, Any]:
    """MiMo's own `{"type": "web_search"}` tool, with only the options MiMo documents: `max_keyword`,
    `force_search`, `limit`, and `user_location` (flat, as Responses sends it, or nested under
    `approximate`, as Chat's `web_search_options` does)."""
    native: dict[str, Any] = {"type": "web_search"}
    for key in _SEARCH_OPTIONS:
        if tool.get(key) is not None:
            native[key] = tool[key]
    location = tool.get("user_location")
    if isinstance(location, dict):
        nested = location.get("approximate")
        where: dict[str, Any] = nested if isinstance(nested, dict) else location
        picked = {k: where[k] for k in _LOCATION if isinstance(where.get(k), str) and where[k]}
        if picked:
            native["user_location"] = {"type": "approximate", **picked}
    return native


@dataclass(slots=True)
class ToolSelection:
    """What `tool_choice` leaves: the tools to send, whether the model is told it must call one,
    and whether web search may still run (MiMo's native tool, or the gateway's own search)."""

    entries: list[Entry]
    must_call: bool
    search: bool

    def line(self) -> str | None:
        return must_call_line(self.entries) if self.must_call and self.entries else None


def select_tools(choice: Any, entries: list[Entry], *, aside: Entry | None = None,
                 declared: frozenset[str] = frozenset()) -> ToolSelection:
    """Apply `tool_choice` (either API's shape) to the declared tools. MiMo honours only "auto",
    so a required call is asked for in words (and for web search alone, with `force_search`):
    - absent, "auto": every tool; "none": no tool at all;
    - "required": every tool, must call one;
    - a named function or custom tool: only that tool, must call it;
    - `allowed_tools`: only the listed tools; mode "required" must call one of them;
    - a hosted tool (`{"type": "web_search"}`, `{"type": "local_shell"}`, ...): only tools of that
      type, must call one.
    A choice that needs a tool the request does not offer is a 400 naming `tool_choice`, as OpenAI
    answers; one that names a tool the gateway dropped (a hosted tool MiMo cannot run, with
    `drop_unsupported_tools`) leaves the choice to the model.
    aside: the client's web_search when MiMo will not see it (the gateway searches instead).
    declared: the types of the tools the client declared, kept or not."""
    pool = [*entries, aside] if aside is not None else list(entries)
    kept, must = _choose(choice, pool, frozenset(_kind(k) for k in declared))
    searching = [e for e in kept if e.client_type == "web_search"]
    if must and searching and len(searching) == len(kept):
        for entry in searching:
            if entry is not aside:
                entry.tool["force_search"] = True  # MiMo's own way to insist on searching
        must = False
    return ToolSelection([e for e in kept if e is not aside], must, bool(searching))


def _kind(kind: str) -> str:
    """A tool type as `Entry.client_type` spells it (every web_search variant is web_search)."""
    return "web_search" if kind.startswith("web_search") else kind


def _not_offered(what: str) -> OpenAIError:
    return invalid_request(f"tool_choice {what}, which is not among the request's tools.", param="tool_choice")


def _choose(choice: Any, pool: list[Entry], declared: frozenset[str]) -> tuple[list[Entry], bool]:
    if choice is None or choice == "auto":
        return pool, False
    if choice == "none":
        return [], False
    if choice == "required":
        if not pool and not declared:
            raise invalid_request("tool_choice 'required' needs tools: the request has none.", param="tool_choice")
        return pool, bool(pool)
    if isinstance(choice, str):
        raise invalid_request("'tool_choice' must be none, auto, required or an object.", param="tool_choice")
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise invalid_request("'tool_choice' must be a string or an object with a 'type'.", param="tool_choice")
    kind = choice["type"]
    if kind in ("function", "custom"):
        return [_named(pool, choice)], True
    if kind == "allowed_tools":
        nested = choice.get("allowed_tools")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else choice  # Chat nests it
        mode, listed = spec.get("mode", "auto"), spec.get("tools")
        if mode not in ("auto", "required"):
            raise invalid_request("'tool_choice.mode' must be auto or required.", param="tool_choice.mode")
        if not isinstance(listed, list):
            raise invalid_request("'tool_choice.tools' must be an array.", param="tool_choice.tools")
        for wanted in listed:
            if not any(_listed(e, wanted) for e in pool) and not _dropped(wanted, declared):
                raise _not_offered(f"allows {_described(wanted)}")
        return [e for e in pool if any(_listed(e, wanted) for wanted in listed)], mode == "required"
    matches = [e for e in pool if e.client_type == _kind(kind)]
    if not matches and _kind(kind) not in declared:
        raise _not_offered(f"names a {kind[:64]!r} tool")
    return (matches, True) if matches else (pool, False)


def _dropped(wanted: Any, declared: frozenset[str]) -> bool:
    """A hosted tool the client declared that the gateway did not send."""
    kind = wanted.get("type") if isinstance(wanted, dict) else None
    return isinstance(kind, str) and kind not in ("function", "custom", "namespace") and _kind(kind) in declared


def _described(wanted: Any) -> str:
    if not isinstance(wanted, dict):
        return "a tool that is not an object"
    name = _name_of(wanted)
    kind = str(wanted.get("type"))[:64]
    return f"{kind} {str(name)[:64]!r}" if name is not None else f"a {kind!r} tool"


def _name_of(choice: dict[str, Any]) -> Any:
    name = choice.get("name")
    if name is None and isinstance(choice.get("function"), dict):  # the Chat shape
        name = choice["function"].get("name")
    return name


def _named(entries: list[Entry], choice: dict[str, Any]) -> Entry:
    name = _name_of(choice)
    if not isinstance(name, str) or not name:
        raise invalid_request("'tool_choice.name' must be a non-empty string.", param="tool_choice.name")
    namespace = choice.get("namespace")
    named = [e for e in entries if e.spec and e.client_type in ("function", "custom") and e.spec.name == name]
    scoped = [e for e in named if e.spec and e.spec.namespace == namespace] if namespace else \
        [e for e in named if e.spec and e.spec.namespace is None] or named
    found = scoped or [e for e in entries if e.spec and e.upstream == name]
    if not found:
        raise _not_offered(f"names tool {name[:64]!r}")
    return found[0]


def _listed(entry: Entry, wanted: Any) -> bool:
    if not isinstance(wanted, dict):
        return False
    kind = wanted.get("type")
    if kind in ("function", "custom"):
        return bool(entry.spec and entry.client_type in ("function", "custom") and entry.spec.name == _name_of(wanted)
                    and (wanted.get("namespace") in (None, entry.spec.namespace)))
    if kind == "namespace":
        return bool(entry.spec and entry.spec.namespace == wanted.get("name"))
    if isinstance(kind, str) and kind.startswith("web_search"):
        return entry.client_type == "web_search"
    return kind == entry.client_type
