"""How a tool the client declared is presented to MiMo, and how its calls come back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ToolKind = Literal["function", "custom", "local_shell", "tool_search"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The client-side identity of one upstream function name.

    kind: what the client declared (`custom` calls come back as `custom_tool_call`
    with the raw `input`, `local_shell` as `local_shell_call`, ...).
    name: the name the client knows; namespace: the `namespace` tool it sat in.
    """

    kind: ToolKind
    name: str
    namespace: str | None = None


# upstream function name -> client identity. A name not in the map is a plain function.
ToolMap = Mapping[str, ToolSpec]


# Identity keys: client functions and custom tools share one name space per namespace;
# the two builtins have fixed identities.
Key = tuple[str, str | None, str | None]


@dataclass(slots=True)
class Entry:
    """One translated tool: its chat form and what the client called it."""

    tool: dict[str, Any]
    client_type: str
    spec: ToolSpec | None = None  # None for native web_search
    key: Key | None = None
    preferred: tuple[str, ...] = ()
    builtin: bool = False

    @property
    def upstream(self) -> str | None:
        return self.tool["function"]["name"] if self.spec else None
