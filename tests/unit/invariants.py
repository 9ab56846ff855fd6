"""Invariants every Responses event stream we emit must satisfy (reusable by end-to-end tests).

`check_responses_stream(events)` raises AssertionError naming the first broken rule and
returns the terminal `response`. Events are the decoded JSON objects, in order.
"""

from __future__ import annotations

from typing import Any

TERMINAL = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}
LIFECYCLE = {"response.created", "response.in_progress", "response.queued", *TERMINAL}
ITEM_EVENTS = {
    "response.content_part.added", "response.content_part.done",
    "response.output_text.delta", "response.output_text.done", "response.output_text.annotation.added",
    "response.refusal.delta", "response.refusal.done",
    "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.delta", "response.reasoning_summary_text.done",
    "response.reasoning_text.delta", "response.reasoning_text.done",
    "response.function_call_arguments.delta", "response.function_call_arguments.done",
    "response.custom_tool_call_input.delta", "response.custom_tool_call_input.done",
    "response.web_search_call.in_progress", "response.web_search_call.searching",
    "response.web_search_call.completed",
}
KNOWN = LIFECYCLE | ITEM_EVENTS | {"response.output_item.added", "response.output_item.done"}
USAGE_COUNTS = (("input_tokens",), ("output_tokens",), ("total_tokens",),
                ("input_tokens_details", "cached_tokens"), ("output_tokens_details", "reasoning_tokens"))
# Fields without which Codex silently drops a done item (codex-rs models.rs).
REQUIRED_ITEM_FIELDS = {
    "message": ("id", "role", "status", "content"),
    "reasoning": ("id", "summary"),
    "function_call": ("id", "call_id", "name", "arguments", "status"),
    "custom_tool_call": ("id", "call_id", "name", "input"),
    "local_shell_call": ("id", "call_id", "status", "action"),
    "tool_search_call": ("id", "call_id", "execution", "arguments"),
    "web_search_call": ("id", "status", "action"),
}


def _require(condition: Any, message: str) -> None:
    if not condition:
        raise AssertionError(message)


class _Item:
    def __init__(self, index: int, item: dict[str, Any]) -> None:
        self.index = index
        self.added = item
        self.text: dict[tuple[str, int], list[str]] = {}  # (kind, part index) -> deltas
        self.parts_open: set[tuple[str, int]] = set()
        self.text_done: dict[tuple[str, int], str] = {}
        self.annotations: list[dict[str, Any]] = []
        self.arguments: list[str] = []
        self.arguments_done: str | None = None


class _Checker:
    def __init__(self) -> None:
        self.items: list[_Item] = []
        self.open: _Item | None = None
        self.done_items: list[dict[str, Any]] = []
        self.response_id: str | None = None

    def run(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        _require(events, "the stream has no events")
        _require(events[0].get("type") == "response.created", f"first event is {events[0].get('type')!r}")
        terminal = None
        for position, event in enumerate(events):
            kind = event.get("type")
            _require(isinstance(kind, str), f"event {position} has no type")
            _require(kind in KNOWN, f"non-standard event type {kind!r}")
            _require(event.get("sequence_number") == position,
                     f"event {position} ({kind}) has sequence_number {event.get('sequence_number')!r}")
            _require(terminal is None, f"{kind} after the terminal event")
            if kind in LIFECYCLE:
                self.lifecycle(event)
                if kind in TERMINAL:
                    terminal = event
            elif kind == "response.output_item.added":
                self.added(event)
            elif kind == "response.output_item.done":
                self.done(event)
            else:
                self.item_event(event)
        _require(terminal is not None, "no terminal event")
        return self.terminal(terminal)

    def lifecycle(self, event: dict[str, Any]) -> None:
        response = event.get("response")
        _require(isinstance(response, dict) and isinstance(response.get("id"), str),
                 f"{event['type']} without a response id")
        if self.response_id is None:
            self.response_id = response["id"]
        _require(response["id"] == self.response_id, "the response id changed")
        _require(response.get("object") == "response", "response.object is not 'response'")
        if event["type"] not in TERMINAL:
            _require(response.get("status") == "in_progress", f"{event['type']} status {response.get('status')!r}")

    def added(self, event: dict[str, Any]) -> None:
        _require(self.open is None, f"item {event.get('output_index')} added while item "
                 f"{self.open.index if self.open else None} is still open (overlap)")
        _require(event.get("output_index") == len(self.items),
                 f"output_index {event.get('output_index')} is not dense (expected {len(self.items)})")
        item = event.get("item")
        _require(isinstance(item, dict) and item.get("type") and item.get("id"), "added item without type/id")
        _require(item["id"] not in {i.added["id"] for i in self.items}, f"item id {item['id']} reused")
        _require(item.get("status", "in_progress") == "in_progress", "added item is not in_progress")
        self.open = _Item(len(self.items), item)
        self.items.append(self.open)

    def current(self, event: dict[str, Any]) -> _Item:
        item = self.open
        _require(item is not None, f"{event['type']} outside any open item")
        assert item is not None
        _require(event.get("output_index") == item.index,
                 f"{event['type']} output_index {event.get('output_index')} != its item's {item.index}")
        if "item_id" in event or event["type"] != "response.output_item.done":
            _require(event.get("item_id") == item.added["id"],
                     f"{event['type']} item_id {event.get('item_id')!r} is not the open item {item.added['id']!r}")
        return item

    def item_event(self, event: dict[str, Any]) -> None:
        item = self.current(event)
        kind = event["type"]
        if kind.startswith("response.content_part.") or kind.startswith("response.output_text."):
            self.text_event(item, event, "content", event.get("content_index"))
        elif kind.startswith("response.reasoning_summary_"):
            self.text_event(item, event, "summary", event.get("summary_index"))
        elif kind.startswith("response.reasoning_text."):
            self.text_event(item, event, "reasoning", event.get("content_index"))
        elif kind.endswith(".delta"):
            _require(item.arguments_done is None, f"{kind} after its .done")
            _require(isinstance(event.get("delta"), str), f"{kind} without a string delta")
            item.arguments.append(event["delta"])
        elif kind.endswith(".done") and kind != "response.refusal.done":
            value = event.get("arguments", event.get("input"))
            _require(isinstance(value, str), f"{kind} without arguments/input")
            _require("".join(item.arguments) == value, f"{kind}: deltas do not concatenate to the done value")
            item.arguments_done = value

    def text_event(self, item: _Item, event: dict[str, Any], family: str, index: Any) -> None:
        kind = event["type"]
        key = (family, index)
        _require(isinstance(index, int), f"{kind} without an integer index")
        if kind.endswith("part.added"):
            _require(key not in item.text, f"{kind}: part {index} added twice")
            _require(event.get("part", {}).get("text") == "", f"{kind}: part does not start empty")
            item.text[key] = []
            item.parts_open.add(key)
            return
        _require(key in item.parts_open, f"{kind} for part {index} that is not open")
        if kind.endswith(".delta"):
            _require(key not in item.text_done, f"{kind} after its text .done")
            _require(isinstance(event.get("delta"), str), f"{kind} without a string delta")
            if family == "content":
                _require(event.get("logprobs") == [], f"{kind} without logprobs: []")
            item.text[key].append(event["delta"])
        elif kind.endswith("annotation.added"):
            _require(key not in item.text_done, f"{kind} after output_text.done")
            _require(event.get("annotation_index") == len(item.annotations), f"{kind}: annotation_index not dense")
            item.annotations.append(event.get("annotation"))
        elif kind.endswith("text.done"):
            _require("".join(item.text[key]) == event.get("text"), f"{kind}: deltas do not concatenate to text")
            item.text_done[key] = event["text"]
        elif kind.endswith("part.done"):
            _require(key in item.text_done, f"{kind} before its text .done")
            part = event.get("part") or {}
            _require(part.get("text") == "".join(item.text[key]), f"{kind}: part text differs from deltas")
            if family == "content":
                _require(part.get("annotations") == item.annotations, f"{kind}: part annotations differ")
            item.parts_open.discard(key)

    def done(self, event: dict[str, Any]) -> None:
        item = self.current(event)
        final = event.get("item")
        _require(isinstance(final, dict), "output_item.done without an item")
        _require(final.get("type") == item.added["type"] and final.get("id") == item.added["id"],
                 "output_item.done changed the item's type or id")
        _require(final.get("status", "completed") in ("completed", "incomplete"),
                 f"done item status {final.get('status')!r}")
        _require(not item.parts_open, f"item {item.index} done with parts still open")
        for field in REQUIRED_ITEM_FIELDS.get(final["type"], ()):
            _require(field in final, f"done {final['type']} lacks {field!r}")
        self.check_final_text(item, final)
        self.done_items.append(final)
        self.open = None

    def check_final_text(self, item: _Item, final: dict[str, Any]) -> None:
        kind = final["type"]
        if kind == "message":
            for index, part in enumerate(final["content"]):
                _require(part.get("text") == "".join(item.text.get(("content", index), [])),
                         f"message content[{index}] differs from its deltas")
                _require(part.get("annotations") == item.annotations, "message annotations differ from events")
                _require(part.get("logprobs") == [], "output_text part without logprobs: []")
        elif kind == "reasoning":
            for index, part in enumerate(final["summary"]):
                _require(part == {"type": "summary_text", "text": "".join(item.text.get(("summary", index), []))},
                         f"reasoning summary[{index}] differs from its deltas")
            blob = final.get("encrypted_content")
            texts = [p["text"] for p in final["summary"] if p["text"]]
            _require(blob is None or blob not in texts, "plain reasoning inside encrypted_content")
        elif kind in ("function_call", "custom_tool_call"):
            field = "arguments" if kind == "function_call" else "input"
            _require(isinstance(final[field], str), f"{kind}.{field} is not a string")
            _require(item.arguments_done == final[field], f"{kind}.{field} differs from its .done event")

    def terminal(self, event: dict[str, Any]) -> dict[str, Any]:
        response = event["response"]
        status = TERMINAL[event["type"]]
        # A failed response leaves the item that was cut unfinished and out of its output: Codex
        # keeps every done item in its history and runs every done tool call.
        _require(self.open is None or status == "failed", "terminal event while an item is open")
        _require(response.get("status") == status, f"{event['type']} with status {response.get('status')!r}")
        _require(response.get("output") == self.done_items, "terminal output differs from the done items")
        _require(isinstance(response.get("completed_at"), int), "terminal completed_at is not an int")
        usage = response.get("usage")
        _require(isinstance(usage, dict), "terminal response without usage")
        for path in USAGE_COUNTS:
            value: Any = usage
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            _require(isinstance(value, int) and not isinstance(value, bool), f"usage {'.'.join(path)} not an int")
        if status == "failed":
            error = response.get("error")
            _require(isinstance(error, dict) and isinstance(error.get("code"), str)
                     and isinstance(error.get("message"), str), "failed response without error code/message")
        else:
            _require(response.get("error") is None, f"{status} response with an error")
        if status == "incomplete":
            _require((response.get("incomplete_details") or {}).get("reason"), "incomplete without a reason")
        else:
            _require(response.get("incomplete_details") is None, f"{status} response with incomplete_details")
        return response


def check_responses_stream(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Assert the stream invariants; return the terminal event's `response`."""
    return _Checker().run(events)
