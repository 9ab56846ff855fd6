"""MiMo's stream chunks gathered into the one `chat.completion` a non-stream Chat client gets (pure).

MiMo is always asked for a stream, also for a non-stream client: a non-stream answer arrives only
when it is complete, so the gateway could not tell a long generation from a silent upstream; a
stream lets the idle timeout measure silence. `CompletionMachine` has the stream translators'
interface (`feed`, `forward`, `finish`, `fail`) and writes nothing; `completion()` is the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import OpenAIError, from_stream_error, stream_truncated


class _Choice:
    __slots__ = ("content", "reasoning", "calls", "annotations", "finish_reason", "role")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}  # by the delta's tool call index
        self.annotations: list[Any] = []
        self.finish_reason: str | None = None
        self.role = "assistant"

    def add(self, delta: dict[str, Any]) -> bool:
        """Take one delta; True when it carried content, reasoning or a tool call."""
        saw = False
        if isinstance(delta.get("role"), str):
            self.role = delta["role"]
        for key, parts in (("content", self.content), ("reasoning_content", self.reasoning)):
            text = delta.get(key)
            if isinstance(text, str) and text:
                parts.append(text)
                saw = True
        annotations = delta.get("annotations")
        if isinstance(annotations, list):
            self.annotations.extend(annotations)
        for fragment in delta.get("tool_calls") or ():
            if isinstance(fragment, dict):
                self._call(fragment)
                saw = True
        return saw

    def _call(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        call = self.calls.setdefault(index if isinstance(index, int) else len(self.calls),
                                     {"id": None, "name": [], "arguments": []})
        if isinstance(fragment.get("id"), str) and fragment["id"]:
            call["id"] = fragment["id"]
        function = fragment.get("function")
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    call[key].append(function[key])

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": "".join(self.content) if self.content else None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [
                {"id": call["id"] or f"call_{index}", "type": "function",
                 "function": {"name": "".join(call["name"]), "arguments": "".join(call["arguments"])}}
                for index, call in sorted(self.calls.items())]
        if self.annotations:
            message["annotations"] = self.annotations
        return message


class CompletionMachine:
    """Feed parsed MiMo chunks in; `completion()` is the `chat.completion` they make, or `error`
    is set (an in-band error, or a stream that ended without a finish reason)."""

    __slots__ = ("done", "emitted_content", "usage", "error", "_secrets", "_envelope", "_choices")

    def __init__(self, *, secrets: Iterable[str] = ()) -> None:
        self.done = False
        self.emitted_content = False
        self.usage: dict[str, Any] | None = None
        self.error: OpenAIError | None = None
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._envelope: dict[str, Any] = {}
        self._choices: dict[int, _Choice] = {}

    @property
    def finish_reason(self) -> str | None:
        first = self._choices.get(0)
        return first.finish_reason if first is not None else None

    def feed(self, chunk: Any) -> bytes:
        if self.done:
            return b""
        if not isinstance(chunk, dict):
            return self.fail(OpenAIError(502, "MiMo sent a stream chunk that is not a JSON object.",
                                         type="upstream_error", code="upstream_error"))
        if chunk.get("error") is not None:
            return self.fail(from_stream_error(chunk, secrets=self._secrets))
        if not self._envelope:
            self._envelope = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for raw in chunk.get("choices") or ():
            if not isinstance(raw, dict):
                continue
            index = raw.get("index")
            choice = self._choices.setdefault(index if isinstance(index, int) else 0, _Choice())
            if isinstance(raw.get("delta"), dict) and choice.add(raw["delta"]):
                self.emitted_content = True
            if isinstance(raw.get("finish_reason"), str) and raw["finish_reason"]:
                choice.finish_reason = raw["finish_reason"]
        return b""

    def forward(self, raw: bytes) -> bytes | None:
        return None  # every chunk is parsed: there is nothing to write until the end

    def finish(self, *, saw_done: bool) -> bytes:
        if not self.done and self.finish_reason is None and not saw_done:
            return self.fail(stream_truncated("the upstream closed the stream without a finish_reason"))
        self.done = True
        return b""

    def fail(self, error: OpenAIError) -> bytes:
        if not self.done:
            self.done, self.error = True, error
        return b""

    def completion(self) -> dict[str, Any]:
        """The non-stream answer, in the shape MiMo gives one (the client's model name is put in
        by `chat_completion_for_client`)."""
        choices = self._choices or {0: _Choice()}
        return {
            "id": self._envelope.get("id", ""), "object": "chat.completion",
            "created": self._envelope.get("created", 0), "model": self._envelope.get("model", ""),
            "choices": [{"index": index, "message": choice.message(), "finish_reason": choice.finish_reason}
                        for index, choice in sorted(choices.items())],
            "usage": self.usage,
        }
