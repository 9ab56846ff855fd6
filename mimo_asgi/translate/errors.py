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
    """An error the client sees as `{"error": {"message", "type", "param", "code"}}`.

    `status` is what the client is answered; `upstream_status` is what MiMo answered (its HTTP
    status, or the status in an in-band error object), None when the error did not come from
    a MiMo answer (transport failures, timeouts, the gateway's own refusals). The two differ
    where the client must not see MiMo's status as its own: MiMo's 401/403 for an account's
    key is a 502 to the client, its 402 a 429, its 421 a 400, its 5xx a 502. An account pool
    reads `upstream_status` to judge the account.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        self.upstream_status = upstream_status

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
    """Turn a non-2xx MiMo answer into the error the client sees (MiMo's status kept as
    `upstream_status`).

    - 429 stays 429 `rate_limit_exceeded`, with `Retry-After` when MiMo sent one;
    - 402 (no balance; Token Plan also answers it to bursts) is 429 `insufficient_quota`, as
      OpenAI answers an exhausted quota: a rate limit to the client, not a payment request;
    - 401/403 reject the gateway's key for its upstream account, never the client's own key
      (which is not sent to MiMo): 502 `upstream_account_rejected`. A 401 would make the
      openai SDK raise AuthenticationError and Codex ask its user to log in again;
    - 421 (MiMo's content filter) is 400 `content_filter`: HTTP stacks retry a 421
      "Misdirected Request" on another connection;
    - 5xx is 502 `upstream_error` (the upstream failed, not the gateway);
    - other 4xx keep their status.
    """
    message, upstream_code = _detail(_parse_error_body(body), body)
    message = redact(message, secrets)[:_MAX_MESSAGE]
    out_headers = {}
    retry_after = (headers or {}).get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        out_headers["retry-after"] = retry_after.strip()
    if status >= 500:
        return OpenAIError(502, f"MiMo upstream error ({status}): {message}", type="upstream_error",
                           code="upstream_error", headers=out_headers, upstream_status=status)
    if status in (401, 403):
        return OpenAIError(502, f"MiMo rejected the gateway's key for its upstream account (HTTP {status}: "
                           f"{message}). Your own API key is not sent to MiMo; the gateway's operator has to "
                           "fix the account.", type="upstream_error", code="upstream_account_rejected",
                           upstream_status=status)
    if status == 402:
        return OpenAIError(429, f"The gateway's MiMo account is out of quota (HTTP 402: {message}).",
                           type="insufficient_quota", code="insufficient_quota", headers=out_headers,
                           upstream_status=status)
    if status == 421:
        return OpenAIError(400, f"MiMo's content filter refused this request: {message}",
                           type="invalid_request_error", code="content_filter", upstream_status=status)
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
    elif upstream_code and not upstream_code.isdigit():
        code = upstream_code
    return OpenAIError(status, message, code=code, headers=out_headers, upstream_status=status)


def from_stream_error(obj: Any, *, secrets: Iterable[str] = ()) -> OpenAIError:
    """An error object MiMo put inside an HTTP 200 stream (`{"error": {...}}`): mapped as
    `from_upstream` maps the status its `code` names (a 502 when it names none)."""
    message, upstream_code = _detail(obj, b"")
    status = int(upstream_code) if upstream_code and upstream_code.isdigit() else 502
    err = from_upstream(status, _json.dumps(obj), secrets=secrets)
    if status == 502:
        err.message = redact(message, secrets)[:_MAX_MESSAGE]
    return err


def store_unavailable() -> OpenAIError:
    """The 503 a client gets when the gateway's shared store (the response store, or the account
    pool's state) cannot be reached."""
    return OpenAIError(503, "The gateway's store is unavailable; retry shortly.", type="server_error",
                       code="store_unavailable", headers={"retry-after": "1"})


def upstream_unreachable(detail: str) -> OpenAIError:
    return OpenAIError(502, f"MiMo upstream unreachable: {detail}", type="upstream_error", code="upstream_unreachable")


def upstream_timeout(detail: str) -> OpenAIError:
    return OpenAIError(504, f"MiMo upstream timed out: {detail}", type="timeout", code="upstream_timeout")


def stream_truncated(detail: str) -> OpenAIError:
    return OpenAIError(502, f"MiMo stream ended early: {detail}", type="upstream_error", code="stream_truncated")
