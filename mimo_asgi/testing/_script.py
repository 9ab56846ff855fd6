"""What the fake says: answers, tool calls and usage as plain data (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TEXT = "Hello from fake MiMo."
DEFAULT_REASONING = "Thinking briefly."


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model makes.

    `arguments` given as a dict is sent as compact JSON; a str is sent verbatim (so a test can
    script truncated or invalid JSON). `id` defaults to `call_` + 24 hex, `index` to the call's
    position in the answer.
    """

    name: str
    arguments: str | Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts; a field left None is derived from the request and answer sizes."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class Answer:
    """One scripted reply to one chat completions request.

    - `text` defaults to "Hello from fake MiMo." without tool calls and to "" with them;
      `reasoning` is streamed (or returned) only when thinking is on for the request.
    - `status` != 200 answers with `error` as the whole JSON body (a MiMo-shaped default when
      None); for `stream: true` requests that body is SSE-framed as MiMo does (`data:{...}`).
    - `status` == 200 with `error` set streams `error` as an in-band data line after
      `error_after` chunks, dropping the rest of the answer (non-stream requests get it as the
      body with status 200).
    - `cut_after=N` closes the connection after N SSE events (non-stream: mid-body): no
      `[DONE]`, no usage. `silence_before` delays the response start; `stall_after=(N, S)`
      goes silent for S seconds after N events (non-stream: between headers and body).
    - `chunk_size` is how many characters of text, reasoning or arguments each delta carries;
      `whole_tool_calls` sends each call in one delta instead of fragments.
    - `done=False` leaves out `data: [DONE]`; `headers` are added to the response.
    """

    text: str | None = None
    reasoning: str = DEFAULT_REASONING
    tool_calls: Sequence[ToolCall] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    status: int = 200
    error: Mapping[str, Any] | None = None
    error_after: int = 0
    cut_after: int | None = None
    silence_before: float = 0.0
    stall_after: tuple[int, float] | None = None
    chunk_size: int = 8
    whole_tool_calls: bool = False
    annotations: Sequence[Mapping[str, Any]] | None = None
    done: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")

    @property
    def content(self) -> str:
        """The answer text after applying the default."""
        if self.text is not None:
            return self.text
        return "" if self.tool_calls else DEFAULT_TEXT

    @property
    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def in_band_error(self) -> bool:
        return self.status == 200 and self.error is not None

    @classmethod
    def error_status(
        cls, status: int, message: str | None = None, *, body: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Answer:
        """A non-2xx answer with MiMo's body for that status (`message` replaces the detail text)."""
        return cls(status=status, error=body if body is not None else error_body(status, message), **kwargs)

    @classmethod
    def rate_limited(cls, **kwargs: Any) -> Answer:
        """429 as MiMo sends it: `{"error": {"code": "429", "message": "Too many requests", ...}}`."""
        return cls.error_status(429, **kwargs)

    @classmethod
    def insufficient_funds(cls, **kwargs: Any) -> Answer:
        """402 with the flat Token Plan burst shape (no `error` wrapper)."""
        return cls.error_status(402, **kwargs)

    @classmethod
    def in_band(cls, after: int = 0, message: str = "Internal Server Error", **kwargs: Any) -> Answer:
        """HTTP 200, then `{"error": {...}}` as a data line after `after` events."""
        return cls(error=error_body(500, message), error_after=after, **kwargs)


def mimo_error(status: int, message: str, param: str = "", type: str = "") -> dict[str, Any]:
    """MiMo's usual error body: the detail usually lives in `param`, not `message`."""
    return {"error": {"code": str(status), "message": message, "param": param, "type": type}}


def error_body(status: int, detail: str | None = None) -> dict[str, Any]:
    """The body MiMo sends for `status`, with `detail` as its most specific text."""
    if status == 400:
        return mimo_error(400, "Param Incorrect", detail or "Invalid request")
    if status == 401:  # key order as captured from the gateway
        param = detail or "Please provide valid API Key"
        return {"error": {"message": "Invalid API Key", "param": param, "code": "401", "type": "invalid_key"}}
    if status == 402:
        return {"type": "server_error", "message": detail or "Upstream request failed: Insufficient account funds"}
    if status == 429:
        return {"error": {"code": "429", "message": detail or "Too many requests", "type": "limitation"}}
    if status == 500:
        return mimo_error(500, detail or "Internal Server Error", "", "Internal Server Error")
    if status == 503:
        return mimo_error(503, detail or "Server Overloaded", "", "Service Unavailable")
    return mimo_error(status, detail or _REASONS.get(status, "Error"))


_REASONS = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 421: "Content Filter"}
