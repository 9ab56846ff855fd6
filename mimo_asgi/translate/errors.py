"""OpenAI-shaped errors, and MiMo's error bodies turned into them (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import _json

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    421: "content_filter",
    422: "invalid_request_error",
    429: "rate_limit_error",
}

# Anything that looks like a MiMo or OpenAI key; real keys are also redacted by value.
_KEY_LIKE = re.compile(r"\b(?:sk|tp)-[A-Za-z0-9_\-]{8,}")
_CONTEXT_OVERFLOW = re.compile(
    r"context (?:length|window)|too long|maximum context|(?:token|prompt)s?\b.*\b(?:exceed|limit)",
    re.IGNORECASE,
)
_MAX_MESSAGE = 2000


class OpenAIError(Exception):
    """An error the client sees as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response_error(self) -> dict[str, Any]:
        """The `error` object of a failed Responses `response`."""
        return {"code": self.code or self.type, "message": self.message}

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500

    def __repr__(self) -> str:
        return f"OpenAIError({self.status}, {self.message!r}, code={self.code!r})"


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, type="invalid_request_error", param=param, code=code)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove every known secret and anything shaped like an API key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


def _parse_error_body(body: bytes) -> Any:
    """MiMo answers streamed requests' errors SSE-framed (`data:{...}`); accept both."""
    text = body.strip()
    if text.startswith(b"data:"):
        text = text[5:].split(b"\n", 1)[0].strip()
    try:
        return _json.loads(text)
    except _json.JSONDecodeError:
        return None


def _detail(parsed: Any, body: bytes) -> tuple[str, str | None]:
    """Message and upstream code from MiMo's several error shapes."""
    obj = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(obj, str) and obj.strip():
        return obj.strip(), None
    if not isinstance(obj, dict):
        obj = parsed if isinstance(parsed, dict) else {}
    message = str(obj.get("message") or "").strip()
    param = obj.get("param")
    # MiMo puts the useful text in `param` ("Param Incorrect" + the real reason).
    if isinstance(param, str) and param.strip() and param.strip() not in message:
        message = f"{message}: {param.strip()}" if message else param.strip()
    code = obj.get("code")
    if not message:
        message = body.decode("utf-8", "replace").strip()[:_MAX_MESSAGE] or "upstream error"
    return message, (str(code) if code not in (None, "") else None)


def from_upstream(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Iterable[str] = (),
) -> OpenAIError:
    """Turn a non-2xx MiMo answer into the error the client sees.

    The upstream status is kept for 4xx and 429 (with `Retry-After`); 5xx becomes 502,
    because the failure is the upstream's, not ours.
    """
    message, upstream_code = _detail(_parse_error_body(body), body)
    message = redact(message, secrets)[:_MAX_MESSAGE]
    out_headers = {}
    retry_after = (headers or {}).get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        out_headers["retry-after"] = retry_after.strip()
    code: str | None = None
    if "webSearchEnabled is false" in message:
        code = "web_search_plugin_not_activated"
        message = (
            "MiMo's web search plugin is not activated for this account; activate it in the MiMo console "
            "(Plugin Management), enable auto web search in the gateway, or remove the web_search tool. "
            f"Upstream said: {message}"
        )
    elif status == 429:
        code = "rate_limit_exceeded"
    elif status in (400, 413) and _CONTEXT_OVERFLOW.search(message):
        code = "context_length_exceeded"
    elif status == 401:
        code = "invalid_api_key"
    elif status == 402:
        code = "insufficient_quota"
    elif upstream_code and not upstream_code.isdigit():
        code = upstream_code
    if status >= 500:
        return OpenAIError(502, f"MiMo upstream error ({status}): {message}", type="upstream_error",
                           code="upstream_error", headers=out_headers)
    return OpenAIError(status, message, code=code, headers=out_headers)


def from_stream_error(obj: Any, *, secrets: Iterable[str] = ()) -> OpenAIError:
    """An error object MiMo put inside an HTTP 200 stream (`{"error": {...}}`)."""
    message, upstream_code = _detail(obj, b"")
    status = int(upstream_code) if upstream_code and upstream_code.isdigit() else 502
    err = from_upstream(status, _json.dumps(obj), secrets=secrets)
    if status == 502:
        err.message = redact(message, secrets)[:_MAX_MESSAGE]
    return err


def upstream_unreachable(detail: str) -> OpenAIError:
    return OpenAIError(502, f"MiMo upstream unreachable: {detail}", type="upstream_error", code="upstream_unreachable")


def upstream_timeout(detail: str) -> OpenAIError:
    return OpenAIError(504, f"MiMo upstream timed out: {detail}", type="timeout", code="upstream_timeout")


def stream_truncated(detail: str) -> OpenAIError:
    return OpenAIError(502, f"MiMo stream ended early: {detail}", type="upstream_error", code="stream_truncated")
