"""MiMo's chat completion answers -> the client's Chat Completions answers (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._sse import DONE, encode_data
from . import _plain
from .errors import OpenAIError, from_stream_error, stream_truncated

_END_LEN = len(_plain.END)
_TOOL_CALLS = b'"tool_calls"'  # a delta member: a JSON string spells its quotes escaped


@dataclass(frozen=True, slots=True)
class CallShape:
    """How the client reads tool calls back.

    legacy: as `function_call` (`message.function_call`, `delta.function_call`, finish reason
    "function_call"): the request declared the deprecated `functions`.
    limit: how many calls an answer keeps (the first ones, in the order MiMo began them); None
    keeps all. 1 with `parallel_tool_calls: false`, and with `functions` (one call per message).
    """

    legacy: bool = False
    limit: int | None = None

    @property
    def reshapes(self) -> bool:
        return self.legacy or self.limit is not None


ALL_CALLS = CallShape()


class ChatStream:
    """MiMo's chunks -> the client's SSE bytes, with the client's model name and one `[DONE]`.

    `feed` may modify the chunk it is given. After a terminal (`finish` or `fail`) every call
    returns b"".
    """

    __slots__ = ("_model", "_include_usage", "_secrets", "usage", "finish_reason", "done", "emitted_content",
                 "response_id", "_learnt", "_envelope", "_client_envelope", "_calls", "_reshapes", "_call_keys", "_last_key")

    def __init__(self, *, model: str, include_usage: bool, secrets: Iterable[str] = (),
                 calls: CallShape = ALL_CALLS) -> None:
        self._model = model
        self._calls = calls
        self._reshapes = calls.reshapes
        self._call_keys: dict[Any, int] = {}  # a call's index (else id) -> its place in the answer
        self._last_key: Any = None
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._include_usage = include_usage
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.emitted_content = False
        self.response_id: str | None = None  # the completion's id, as MiMo gave it
        self._learnt: bytes | None = None  # MiMo's envelope, learnt from a parsed chunk
        self._envelope: bytes | None = None  # the same, once forward may use it (see there)
        self._client_envelope = b""

    def feed(self, chunk: dict) -> bytes:
        if self.done:
            return b""
        if not isinstance(chunk, dict):
            return self.fail(OpenAIError(502, "MiMo sent a stream chunk that is not a JSON object.",
                                         type="upstream_error", code="upstream_error"))
        if chunk.get("error"):
            return self.fail(from_stream_error(chunk, secrets=self._secrets))
        upstream_model = chunk.get("model")
        chunk["model"] = self._model
        if self.response_id is None and isinstance(chunk.get("id"), str):
            self.response_id = chunk["id"]
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if choices and self._reshapes and not self._reshape(choices) and not usage:
            return b""  # it carried only calls the client does not get
        if choices:
            for choice in choices:
                self._note(choice)
            if self._learnt is None:
                self._learnt = _plain.envelope(chunk, upstream_model)
                if self._learnt is not None:
                    self._client_envelope = _plain.envelope(chunk, self._model) or b""
            if self.emitted_content:
                self._envelope = self._learnt
        elif usage and not self._include_usage:
            return b""  # the trailing usage-only chunk the client did not ask for
        if not self._include_usage and "usage" in chunk:
            del chunk["usage"]
        return encode_data(chunk)

    def forward(self, raw: bytes) -> bytes | None:
        """The client's bytes for one upstream read holding exactly one plain delta chunk, made
        without decoding or parsing it (see `_plain`); None when the read must go through the SSE
        decoder and `feed`. Call it only when the decoder holds nothing back.

        Plain: after the first content, MiMo's envelope (same id, created and model as the chunk
        it was learnt from), one delta, a null finish reason, and no line break, finish reason,
        usage or error in between: a chunk whose only effect in `feed` would be the model name.
        Its envelope is swapped for the client's; the delta goes out as MiMo wrote it."""
        envelope = self._envelope  # None before the first content and after the terminal
        if envelope is None or not raw.startswith(envelope) or not raw.endswith(_plain.END):
            return None
        start = len(envelope)
        if _plain.NOT_PLAIN.search(raw, start, len(raw) - _END_LEN) or not (raw.isascii() or _plain.is_utf8(raw)):
            return None
        if self._reshapes and raw.find(_TOOL_CALLS, start, len(raw) - _END_LEN) >= 0:
            return None  # `feed` reshapes calls
        return self._client_envelope + raw[start:]

    def _reshape(self, choices: list[Any]) -> bool:
        """Drop the calls beyond the limit and, for a legacy client, spell the rest as
        `function_call`; False when nothing of the chunk is left for the client."""
        left = False
        for choice in choices:
            if not isinstance(choice, dict):
                left = True
                continue
            if self._calls.legacy and choice.get("finish_reason") == "tool_calls":
                choice["finish_reason"] = "function_call"
            delta = choice.get("delta")
            fragments = delta.get("tool_calls") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and isinstance(fragments, list):
                kept = [f for f in fragments if self._kept(f)]
                del delta["tool_calls"]
                if kept and self._calls.legacy:
                    delta["function_call"] = _function_call(kept)
                elif kept:
                    delta["tool_calls"] = kept
            left = left or bool(delta) or bool(choice.get("finish_reason")) or not isinstance(fragments, list)
        return left

    def _kept(self, fragment: Any) -> bool:
        """Whether the call this fragment belongs to is one the client gets (renumbered from 0)."""
        if not isinstance(fragment, dict):
            return False
        index, call_id = fragment.get("index"), fragment.get("id")
        if isinstance(index, int) and not isinstance(index, bool):
            key: Any = index
        elif isinstance(call_id, str) and call_id:
            key = ("id", call_id)
        else:
            key = self._last_key  # a continuation fragment names neither
        self._last_key = key
        place = self._call_keys.setdefault(key, len(self._call_keys))
        limit = self._calls.limit
        if limit is not None and place >= limit:
            return False
        if "index" in fragment:
            fragment["index"] = place
        return True

    def _note(self, choice: Any) -> None:
        if not isinstance(choice, dict):
            return
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if not self.emitted_content:  # only the first content delta matters
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self.emitted_content = bool(delta.get("content") or delta.get("reasoning_content")
                                            or delta.get("tool_calls") or delta.get("function_call"))

    def finish(self, *, saw_done: bool) -> bytes:
        if self.done:
            return b""
        if self.finish_reason is None and not saw_done:
            return self.fail(stream_truncated("the upstream closed the stream without a finish_reason"))
        self.done, self._envelope = True, None
        return DONE

    def fail(self, error: OpenAIError) -> bytes:
        if self.done:
            return b""
        self.done, self._envelope = True, None
        return encode_data(error.body()) + DONE


def _function_call(fragments: list[dict[str, Any]]) -> dict[str, Any]:
    """One call's fragments (of one chunk) as a legacy `function_call` delta: its name when given,
    its arguments so far."""
    out: dict[str, Any] = {}
    arguments = []
    for fragment in fragments:
        function = fragment.get("function")
        if not isinstance(function, dict):
            continue
        name, given = function.get("name"), function.get("arguments")
        if isinstance(name, str) and name and "name" not in out:
            out["name"] = name
        if isinstance(given, str):
            arguments.append(given)
    if arguments or "name" in out:
        out["arguments"] = "".join(arguments)
    return out


def chat_completion_for_client(completion: dict, *, model: str, secrets: Iterable[str] = (),
                               calls: CallShape = ALL_CALLS) -> dict:
    """A non-stream MiMo body for the client: its model name, never a null `content` without tool
    calls, the calls shaped as `calls` says.

    Raises OpenAIError for an in-band error or a body that is not a chat completion.
    """
    if not isinstance(completion, dict):
        raise OpenAIError(502, "MiMo returned a body that is not a JSON object.", type="upstream_error",
                          code="upstream_error")
    if completion.get("error"):
        raise from_stream_error(completion, secrets=secrets)
    choices = completion.get("choices")
    if not isinstance(choices, list):
        raise OpenAIError(502, "MiMo returned a chat completion without choices.", type="upstream_error",
                          code="upstream_error")
    out = dict(completion, model=model)
    out["choices"] = [_client_choice(c, calls) for c in choices]
    return out


def _client_choice(choice: Any, calls: CallShape) -> Any:
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return choice
    message = dict(message)
    choice = dict(choice, message=message)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and calls.limit is not None:
        message["tool_calls"] = tool_calls = tool_calls[:calls.limit]
    if calls.legacy and isinstance(tool_calls, list) and tool_calls:
        first = tool_calls[0]
        function = first.get("function") if isinstance(first, dict) else None
        function = function if isinstance(function, dict) else {}
        message["function_call"] = {"name": function.get("name"), "arguments": function.get("arguments") or ""}
        message["tool_calls"] = None
    if calls.legacy and choice.get("finish_reason") == "tool_calls":
        choice["finish_reason"] = "function_call"
    if message.get("tool_calls") is None:
        message.pop("tool_calls", None)
        if message.get("content") is None and "function_call" not in message:
            message["content"] = ""
    return choice
