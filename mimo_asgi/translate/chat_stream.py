"""MiMo's chat completion answers -> the client's Chat Completions answers (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _json
from .._sse import DONE, encode_data
from .errors import OpenAIError, from_stream_error, stream_truncated

_LAST_KEY = '"finish_reason":null}]}'  # how a MiMo delta chunk ends (one choice, no usage after it)


class ChatStream:
    """MiMo's chunks -> the client's SSE bytes, with the client's model name and one `[DONE]`.

    `feed` may modify the chunk it is given. After a terminal (`finish` or `fail`) every call
    returns b"".
    """

    __slots__ = ("_model", "_model_json", "_include_usage", "_secrets", "usage", "finish_reason", "done",
                 "emitted_content")

    def __init__(self, *, model: str, include_usage: bool, secrets: Iterable[str] = ()) -> None:
        self._model = model
        self._model_json = _json.dumps_str(model)[1:-1]
        self._secrets = tuple(secrets)  # redacted from in-band error messages
        self._include_usage = include_usage
        self.usage: dict | None = None
        self.finish_reason: str | None = None
        self.done = False
        self.emitted_content = False

    def feed(self, chunk: dict) -> bytes:
        if self.done:
            return b""
        if not isinstance(chunk, dict):
            return self.fail(OpenAIError(502, "MiMo sent a stream chunk that is not a JSON object.",
                                         type="upstream_error", code="upstream_error"))
        if chunk.get("error"):
            return self.fail(from_stream_error(chunk, secrets=self._secrets))
        chunk["model"] = self._model
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                self._note(choice)
        elif usage and not self._include_usage:
            return b""  # the trailing usage-only chunk the client did not ask for
        if not self._include_usage and "usage" in chunk:
            del chunk["usage"]
        return encode_data(chunk)

    def forward(self, data: str) -> bytes | None:
        """The client's bytes for one chunk's JSON text without parsing it, or None when `feed`
        must see it. Only a plain delta chunk after the first content qualifies: one whose only
        effect in `feed` would be the model name (no usage, error or finish reason in it, and a
        single `model` key at the top, before any nested object). The rest of MiMo's text goes
        out as MiMo wrote it, so a chunk costs a few scans instead of a parse and a dump."""
        if not self.emitted_content or self.done or not data.endswith(_LAST_KEY) \
                or data.count('"finish_reason"') != 1 or '"usage"' in data or '"error' in data:
            return None
        i = data.find('"model":"')
        if i < 0 or data.count('"model"') != 1 or data.find("{", 1, i) >= 0 or data.find("[", 0, i) >= 0 \
                or data[0] != "{":
            return None
        j = data.find('"', i + 9)
        if data[j - 1] == "\\":  # an escaped quote: not a plain model id
            return None
        return ("data: %s%s%s\n\n" % (data[:i + 9], self._model_json, data[j:])).encode()

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
        self.done = True
        return DONE

    def fail(self, error: OpenAIError) -> bytes:
        if self.done:
            return b""
        self.done = True
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
