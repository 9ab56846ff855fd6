"""MiMo's chat completion answers -> the client's Chat Completions answers (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._sse import DONE, encode_data
from . import _plain
from .errors import OpenAIError, from_stream_error, stream_truncated

_END_LEN = len(_plain.END)


class ChatStream:
    """MiMo's chunks -> the client's SSE bytes, with the client's model name and one `[DONE]`.

    `feed` may modify the chunk it is given. After a terminal (`finish` or `fail`) every call
    returns b"".
    """

    __slots__ = ("_model", "_include_usage", "_secrets", "usage", "finish_reason", "done", "emitted_content",
                 "_learnt", "_envelope", "_client_envelope")

    def __init__(self, *, model: str, include_usage: bool, secrets: Iterable[str] = ()) -> None:
        self._model = model
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._include_usage = include_usage
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.emitted_content = False
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
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
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
        return self._client_envelope + raw[start:]

    def _note(self, choice: Any) -> None:
        if not isinstance(choice, dict):
            return
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if not self.emitted_content:  # only the first content delta matters
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self.emitted_content = bool(delta.get("content") or delta.get("reasoning_content")
                                            or delta.get("tool_calls"))

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


def chat_completion_for_client(completion: dict, *, model: str, secrets: Iterable[str] = ()) -> dict:
    """A non-stream MiMo body for the client: its model name, never a null `content` without tool calls.

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
    out["choices"] = [_client_choice(c) for c in choices]
    return out


def _client_choice(choice: Any) -> Any:
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return choice
    message = dict(message)
    if message.get("tool_calls") is None:
        message.pop("tool_calls", None)
        if message.get("content") is None:
            message["content"] = ""
    return dict(choice, message=message)
