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


class CallRun:
    """Which call each tool-call fragment belongs to: the current run of calls (by upstream index,
    else id), in order of first fragment, and the call ids already given in this response."""

    __slots__ = ("_by_key", "order", "_last_key", "_ids")

    def __init__(self) -> None:
        self._by_key: dict[Any, Call] = {}
        self.order: list[Call] = []
        self._last_key: Any = 0
        self._ids: set[str] = set()

    def end_run(self) -> list[Call]:
        """The run's calls, in order of first fragment; the next fragment starts a new run."""
        order, self._by_key, self.order = self.order, {}, []
        return order

    def call_for(self, fragment: dict[str, Any]) -> Call:
        upstream_id = fragment.get("id")
        if not (isinstance(upstream_id, str) and upstream_id):
            upstream_id = None
        index = fragment.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            key: Any = index
        elif upstream_id is not None:
            key = ("id", upstream_id)
        else:
            key = self._last_key
        call = self._by_key.get(key)
        # A new id on a known index is a new call (some upstreams number every call 0).
        if call is None or (upstream_id is not None and call.upstream_id not in (None, upstream_id)):
            call = Call(upstream_id, self._unique_id(upstream_id))
            self._by_key[key] = call
            self.order.append(call)
        elif upstream_id is not None and call.upstream_id is None:
            call.upstream_id = upstream_id
            if call.item_id is None:  # once announced, the call_id must not change
                call.call_id = self._unique_id(upstream_id)
        self._last_key = key
        return call

    def _unique_id(self, upstream_id: str | None) -> str:
        """The upstream id, unless already used in this response (then suffixed): clients pair outputs by it."""
        call_id = upstream_id or ro.new_id("call")
        suffix = 1
        while call_id in self._ids:
            suffix += 1
            call_id = f"{upstream_id}_{suffix}"
        self._ids.add(call_id)
        return call_id


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
