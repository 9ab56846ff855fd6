"""The items a Responses stream is building, and their output-item dicts (pure)."""

from __future__ import annotations

from typing import Any

from . import _response_object as ro
from ._input_stream import InputExtractor
from ._tools import ToolSpec


class TextItem:
    """An open reasoning or message item: its text arrives as parts, joined once at done."""

    __slots__ = ("item_id", "output_index", "parts", "annotations")

    def __init__(self, item_id: str, output_index: int) -> None:
        self.item_id = item_id
        self.output_index = output_index
        self.parts: list[str] = []
        self.annotations: list[dict[str, Any]] = []


class Call:
    """One upstream tool call, from its first fragment to its `output_item.done`."""

    __slots__ = ("upstream_id", "call_id", "name", "arg_parts", "spec", "item_id", "output_index", "extractor")

    def __init__(self, upstream_id: str | None, call_id: str) -> None:
        self.upstream_id = upstream_id
        self.call_id = call_id
        self.name = ""
        self.arg_parts: list[str] = []
        self.spec: ToolSpec | None = None
        self.item_id: str | None = None  # set when output_item.added was emitted
        self.output_index = -1
        self.extractor: InputExtractor | None = None

    @property
    def kind(self) -> str:
        return self.spec.kind if self.spec else "function"


ID_PREFIX = {"function": "fc", "custom": "ctc", "local_shell": "lsh", "tool_search": "tsc"}


def custom_input(extractor: InputExtractor | None, arguments: str) -> str:
    """Once the input started streaming, what was streamed is the input; else from the whole arguments."""
    if extractor is None:
        extractor = InputExtractor()
        extractor.feed(arguments)
    return extractor.text if extractor.started else ro.custom_input(arguments)


def output_text(text: str, annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": list(annotations), "logprobs": []}


def call_item(call: Call, status: str, value: str) -> dict[str, Any]:
    """The output item of a call; `value` is the arguments (or custom input) so far."""
    spec = call.spec
    base = {"id": call.item_id, "call_id": call.call_id}
    if call.kind == "custom":
        item = {"type": "custom_tool_call", **base, "name": spec.name if spec else call.name, "input": value}
    elif call.kind == "local_shell":
        return {"type": "local_shell_call", **base, "status": status,
                "action": ro.shell_action("".join(call.arg_parts))}
    elif call.kind == "tool_search":
        return {"type": "tool_search_call", **base, "status": status, "execution": "client",
                "arguments": ro.tool_search_arguments("".join(call.arg_parts))}
    else:
        item = {"type": "function_call", **base, "name": spec.name if spec else call.name, "arguments": value}
    if spec is not None and spec.namespace:
        item["namespace"] = spec.namespace
    item["status"] = status
    return item
