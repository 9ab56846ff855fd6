"""MiMo `chat.completion.chunk`s -> OpenAI Responses stream events (a pure state machine).

Guarantees, for any chunk sequence:
- `response.created` first, `sequence_number` 0, 1, 2, ... and exactly one terminal event
  (`response.completed`, `response.incomplete` or `response.failed`), emitted last;
- output items never overlap: each is added, streamed and done before the next is added,
  with a dense `output_index` that every event of the item repeats;
- deltas concatenate exactly to the text / arguments / input of the matching `.done`.

Only choice 0 is translated (`n>1` is not a Responses concept). Parallel tool calls may
interleave upstream; the first named call streams live, the others are buffered and
emitted one after another when the run of calls ends. A response holds at most
`max_tool_calls` calls (1 with `parallel_tool_calls: false`): the first ones; MiMo's further
calls are dropped, never announced.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._seal import ReasoningSealer
from .._sse import encode_event
from . import _plain
from . import _response_object as ro
from ._events import ResponseEvents, first_choice
from ._input_stream import InputExtractor
from ._stream_items import ID_PREFIX, Call, CallRun, TextItem, call_item, custom_input, output_text
from ._tools import ToolSpec
from .errors import OpenAIError, from_stream_error, stream_truncated

_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
_STREAMED_KINDS = ("function", "custom")  # kinds whose calls stream argument/input deltas


def _text_delta_event(seq: int, item_id: str, output_index: int, delta: str) -> dict[str, Any]:
    return {"type": "response.output_text.delta", "sequence_number": seq, "item_id": item_id,
            "output_index": output_index, "content_index": 0, "delta": delta, "logprobs": []}


def _reasoning_delta_event(seq: int, item_id: str, output_index: int, delta: str) -> dict[str, Any]:
    return {"type": "response.reasoning_summary_text.delta", "sequence_number": seq, "item_id": item_id,
            "output_index": output_index, "summary_index": 0, "delta": delta}


def _template(build: Any) -> bytes:
    """The SSE bytes `encode_event` makes of the event `build` builds, with `%d` / `%b` where its
    sequence number, item id, output index and delta go: `forward` fills them in, byte for byte
    what `feed` sends for the same delta, without a dict or a dump."""
    spelled = encode_event(build(1357924680, "@ITEM@", 1928374650, "@DELTA@")).replace(b"%", b"%%")
    for sentinel, slot in ((b"1357924680", b"%d"), (b"@ITEM@", b"%b"), (b"1928374650", b"%d"), (b"@DELTA@", b"%b")):
        assert spelled.count(sentinel) == 1
        spelled = spelled.replace(sentinel, slot)
    return spelled


# The two hot events, for `forward`.
_TEXT_DELTA = _template(_text_delta_event)
_REASONING_DELTA = _template(_reasoning_delta_event)
_ESCAPED = re.compile(rb'[\x00-\x1f"\\]')  # what a JSON string spells with a backslash


class ResponsesStream(ResponseEvents):
    """Feed parsed MiMo chunks in, get Responses events (dicts with `type` and `sequence_number`) out."""

    __slots__ = ("_search_item", "_cite", "_secrets", "_tool_map", "_sealer", "_output", "_reasoning", "_message",
                 "_calls", "_live", "_annotations", "_sources", "_finish_reason", "_leading", "_envelope",
                 "_call_room")  # an open stream holds one

    def __init__(
        self,
        request: dict,
        *,
        response_id: str,
        model: str,
        tool_map: Mapping[str, ToolSpec],
        sealer: ReasoningSealer | None,
        include_encrypted: bool,
        created_at: int,
        secrets: Iterable[str] = (),
        web_search: dict[str, Any] | None = None,
        cite: Callable[[str], list[dict[str, Any]]] | None = None,
    ) -> None:
        """web_search: a `web_search_call` item for a search the gateway ran itself, emitted first;
        cite: text -> `url_citation` annotations for that search's results, added to each message."""
        super().__init__(request, response_id=response_id, model=model, created_at=created_at)
        self._search_item = web_search
        self._cite = cite
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._tool_map = tool_map
        self._sealer = sealer if include_encrypted else None
        self._output: list[dict[str, Any]] = []
        self._reasoning: TextItem | None = None
        self._message: TextItem | None = None
        self._calls = CallRun()
        self._live: Call | None = None
        self._annotations: list[dict[str, Any]] = []  # for the next message
        self._sources: list[str] = []  # for the next web_search_call item
        self._finish_reason: str | None = None
        self._leading = 1 if web_search is not None else 0  # items emitted before MiMo said anything
        self._envelope: bytes | None = None  # MiMo's chunk envelope, for `forward`
        self._call_room = _call_limit(request)  # calls this response may still hold (None: any)

    # -- public API -----------------------------------------------------------------

    @property
    def emitted_content(self) -> bool:
        return len(self._output) > self._leading

    def _opening(self) -> None:
        if self._search_item is not None:  # the search the gateway ran, before anything MiMo says
            self._add_item({**self._search_item, "status": "in_progress"})
            self._done_item(0, self._search_item)

    def feed(self, chunk: dict) -> list[dict[str, Any]]:
        """Translate one parsed chunk (or an in-band `{"error": ...}` object)."""
        if self._response is not None or not isinstance(chunk, dict):
            return []
        if not self._started:
            return self.start() + self.feed(chunk)
        if chunk.get("error") is not None:
            return self.fail(from_stream_error(chunk, secrets=self._secrets))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        choice = first_choice(chunk.get("choices"))
        if choice is not None:
            self._feed_choice(choice)
            if self._envelope is None:
                self._envelope = _plain.envelope(chunk, chunk.get("model"))
        return self._flush()

    def forward(self, raw: bytes) -> bytes | None:
        """The SSE bytes for one upstream read holding exactly one plain text or reasoning delta
        of the item already open, made without decoding or parsing it (see `_plain`); None when
        the read must go through the SSE decoder and `feed` (call it only when the decoder holds
        nothing back). The delta is a single JSON string without escapes, so its bytes are the
        text, spelt as `encode_event` would spell it; `feed` would only have appended it to the
        item and emitted the one delta event built here."""
        envelope = self._envelope
        if envelope is None or not raw.startswith(envelope) or not raw.endswith(_plain.END):
            return None
        start, end = len(envelope), len(raw) - len(_plain.END) - 1  # end: the string's closing quote
        if raw[end] != 0x22:
            return None
        if raw.startswith(b'"content":"', start):
            item, template, start = self._message, _TEXT_DELTA, start + 11
        elif raw.startswith(b'"reasoning_content":"', start):
            item, template, start = self._reasoning, _REASONING_DELTA, start + 21
        else:
            return None
        if item is None or self._response is not None or start > end or _ESCAPED.search(raw, start, end):
            return None
        text = raw[start:end]
        if not text:  # `feed` emits nothing for an empty delta
            return b""
        try:
            item.parts.append(text.decode())
        except UnicodeDecodeError:
            return None
        self._seq += 1
        return template % (self._seq - 1, item.item_id.encode(), item.output_index, text)

    def finish(self, *, saw_done: bool) -> list[dict[str, Any]]:
        """The upstream ended: close what is open and emit the one terminal event."""
        if self.done:
            return []
        out = self.start() if not self._started else []
        if self._finish_reason is None and not saw_done:
            return out + self.fail(stream_truncated("the connection closed before a finish_reason"))
        if self._finish_reason is None and not self.emitted_content and not self._has_open_items():
            return out + self.fail(
                OpenAIError(502, "MiMo returned an empty stream", type="upstream_error", code="empty_response")
            )
        reason = _INCOMPLETE_REASONS.get(self._finish_reason or "")
        self._close_all("incomplete" if reason else "completed")
        if reason:
            self._terminate("response.incomplete", "incomplete", list(self._output),
                            incomplete_details={"reason": reason})
        else:
            self._terminate("response.completed", "completed", list(self._output))
        return out + self._flush()

    def fail(self, error: OpenAIError) -> list[dict[str, Any]]:
        """Emit `response.failed` carrying the error. Items still open (and calls still buffered)
        stay unfinished and out of the output: Codex keeps every done item in its history and
        runs every done tool call, so a cut answer must never look finished."""
        if self.done:
            return []
        out = self.start() if not self._started else []
        self._reasoning = self._message = self._live = None
        self._calls.end_run()
        self._output = [item for item in self._output if item.get("status") != "in_progress"]
        self._terminate("response.failed", "failed", list(self._output), error=error.response_error())
        return out + self._flush()

    # -- per chunk --------------------------------------------------------------------

    def _feed_choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._feed_delta(delta)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self._finish_reason = reason
            self._close_all("incomplete" if reason in _INCOMPLETE_REASONS else "completed")

    def _feed_delta(self, delta: dict[str, Any]) -> None:
        if len(delta) == 1:  # nearly every delta: one kind, and the general path below would only do this
            text = delta.get("content")
            if text is not None:
                if isinstance(text, str) and text:
                    self._text_delta(text)
                return
            text = delta.get("reasoning_content")
            if text is not None:
                if isinstance(text, str) and text:
                    self._reasoning_delta(text)
                return
            tool_calls = delta.get("tool_calls")
            if tool_calls is not None:
                if isinstance(tool_calls, list):
                    self._call_fragments(tool_calls)
                return
        # One chunk may carry several kinds: reasoning, then text, then calls, so that
        # no delta ever lands after its item's done.
        annotations = delta.get("annotations")
        if isinstance(annotations, list) and annotations:
            self._add_annotations(annotations)
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._reasoning_delta(reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text_delta(content)
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            self._call_fragments(tool_calls)

    def _add_annotations(self, annotations: list[Any]) -> None:
        target = self._message.annotations if self._message else self._annotations
        for raw in annotations:
            citation = ro.url_citation(raw)
            if citation is None:
                continue
            target.append(citation)
            if citation["url"] not in self._sources:
                self._sources.append(citation["url"])

    # -- reasoning ----------------------------------------------------------------------

    def _reasoning_delta(self, text: str) -> None:
        if self._reasoning is None:
            self._close_message("completed")
            self._close_calls("completed")
            self._reasoning = item = TextItem(ro.new_id("rs"), len(self._output))
            self._add_item({"type": "reasoning", "id": item.item_id, "summary": [], "status": "in_progress"})
            self._emit("response.reasoning_summary_part.added", item_id=item.item_id,
                       output_index=item.output_index, summary_index=0, part={"type": "summary_text", "text": ""})
        item = self._reasoning
        item.parts.append(text)
        self._out.append(_reasoning_delta_event(self._seq, item.item_id, item.output_index, text))
        self._seq += 1

    def _close_reasoning(self, status: str) -> None:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return
        text = "".join(item.parts)
        ids = {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0}
        self._emit("response.reasoning_summary_text.done", **ids, text=text)
        self._emit("response.reasoning_summary_part.done", **ids, part={"type": "summary_text", "text": text})
        done: dict[str, Any] = {"type": "reasoning", "id": item.item_id,
                                "summary": [{"type": "summary_text", "text": text}], "status": status}
        if self._sealer is not None:
            done["encrypted_content"] = self._sealer.seal(text)
        self._done_item(item.output_index, done)

    # -- message ------------------------------------------------------------------------

    def _text_delta(self, text: str) -> None:
        if self._message is None:
            self._close_reasoning("completed")
            self._close_calls("completed")
            self._emit_web_search()
            self._message = item = TextItem(ro.new_id("msg"), len(self._output))
            item.annotations, self._annotations = self._annotations, []
            self._add_item({"type": "message", "id": item.item_id, "role": "assistant",
                            "status": "in_progress", "content": []})
            self._emit("response.content_part.added", item_id=item.item_id, output_index=item.output_index,
                       content_index=0, part=output_text("", []))
        item = self._message
        item.parts.append(text)
        self._out.append(_text_delta_event(self._seq, item.item_id, item.output_index, text))
        self._seq += 1

    def _close_message(self, status: str) -> None:
        item, self._message = self._message, None
        if item is None:
            return
        text = "".join(item.parts)
        if self._cite is not None:
            cited = {a.get("url") for a in item.annotations}
            item.annotations.extend(a for a in self._cite(text) if a.get("url") not in cited)
        ids = {"item_id": item.item_id, "output_index": item.output_index, "content_index": 0}
        for index, annotation in enumerate(item.annotations):
            self._emit("response.output_text.annotation.added", **ids, annotation_index=index, annotation=annotation)
        self._emit("response.output_text.done", **ids, text=text, logprobs=[])
        self._emit("response.content_part.done", **ids, part=output_text(text, item.annotations))
        self._done_item(item.output_index, {"type": "message", "id": item.item_id, "role": "assistant",
                                            "status": status, "content": [output_text(text, item.annotations)]})

    def _emit_web_search(self) -> None:
        """The pending sources become one completed web_search_call item (nothing may be open)."""
        if not self._sources:
            return
        item = ro.web_search_item(ro.new_id("ws"), self._sources)
        self._sources = []
        index = len(self._output)
        self._add_item({**item, "status": "in_progress"})
        self._done_item(index, item)

    # -- tool calls ---------------------------------------------------------------------

    def _call_fragments(self, fragments: list[Any]) -> None:
        for fragment in fragments:
            if isinstance(fragment, dict):
                self._call_fragment(fragment)

    def _call_fragment(self, fragment: dict[str, Any]) -> None:
        if self._reasoning is not None:
            self._close_reasoning("completed")
        if self._message is not None:
            self._close_message("completed")
        call = self._calls.call_for(fragment)
        function = fragment.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name and not call.name:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            call.arg_parts.append(arguments)
            if call is self._live:
                self._stream_arguments(call, arguments)
        if self._live is None and call.item_id is None and call.name and self._call_room != 0:
            self._go_live(call)

    def _go_live(self, call: Call) -> None:
        call.spec = self._tool_map.get(call.name)
        if call.kind not in _STREAMED_KINDS:
            return  # local_shell / tool_search items are built whole at the end
        self._live = call
        self._emit_web_search()
        self._add_call(call)
        if call.kind == "custom":
            call.extractor = InputExtractor()
        for part in call.arg_parts:
            self._stream_arguments(call, part)

    def _add_call(self, call: Call) -> None:
        if self._call_room is not None:
            self._call_room -= 1
        call.item_id = ro.new_id(ID_PREFIX.get(call.kind, "fc"))
        call.output_index = len(self._output)
        self._add_item(call_item(call, "in_progress", ""))

    def _stream_arguments(self, call: Call, fragment: str) -> None:
        if call.extractor is None:
            type_ = "response.function_call_arguments.delta"
        else:
            type_ = "response.custom_tool_call_input.delta"
            fragment = call.extractor.feed(fragment)
            if not fragment:
                return
        self._out.append({"type": type_, "sequence_number": self._seq, "item_id": call.item_id,
                          "output_index": call.output_index, "delta": fragment})
        self._seq += 1

    def _close_calls(self, status: str) -> None:
        """Finish the live call, then emit each buffered call whole, in order of first fragment."""
        order = self._calls.end_run()
        if not order:
            return
        if self._live is not None:
            order = [self._live] + [c for c in order if c is not self._live]
        self._live = None
        for call in order:
            if call.item_id is None and self._call_room == 0:
                continue  # beyond max_tool_calls: never announced, so nothing to close
            self._finish_call(call, status)

    def _finish_call(self, call: Call, status: str) -> None:
        """Emit what was not streamed yet, the `.done` event and the complete item."""
        arguments = "".join(call.arg_parts)
        if call.item_id is None:  # buffered until now: nothing of it was streamed
            call.spec = self._tool_map.get(call.name)
            self._emit_web_search()
            self._add_call(call)
            streamed = ""
        elif call.extractor is not None:
            streamed = call.extractor.text
        else:
            streamed = arguments
        ids = {"item_id": call.item_id, "output_index": call.output_index}
        value = arguments
        if call.kind == "custom":
            value = custom_input(call.extractor, arguments)
            if len(value) > len(streamed):
                self._emit("response.custom_tool_call_input.delta", **ids, delta=value[len(streamed):])
            self._emit("response.custom_tool_call_input.done", **ids, input=value)
        elif call.kind == "function":
            value = arguments or "{}"
            if len(value) > len(streamed):
                self._emit("response.function_call_arguments.delta", **ids, delta=value[len(streamed):])
            self._emit("response.function_call_arguments.done", **ids, arguments=value)
        self._done_item(call.output_index, call_item(call, status, value))

    # -- plumbing -----------------------------------------------------------------------

    def _has_open_items(self) -> bool:
        return bool(self._reasoning or self._message or self._calls.order)

    def _close_all(self, status: str) -> None:
        self._close_reasoning(status)
        self._close_message(status)
        self._close_calls(status)
        self._emit_web_search()

    def _add_item(self, item: dict[str, Any]) -> None:
        index = len(self._output)
        self._output.append(item)
        self._emit("response.output_item.added", output_index=index, item=item)

    def _done_item(self, index: int, item: dict[str, Any]) -> None:
        self._output[index] = item
        self._emit("response.output_item.done", output_index=index, item=item)


def _call_limit(request: Mapping[str, Any]) -> int | None:
    """The most tool calls the response may hold: `max_tool_calls`, and one with
    `parallel_tool_calls` false; None: no limit."""
    limit = request.get("max_tool_calls")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else None
    if request.get("parallel_tool_calls") is False:
        limit = 1 if limit is None else min(limit, 1)
    return limit

