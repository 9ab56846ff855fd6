"""The MiMo client: one pooled httpx transport (and AsyncClient) per middleware, timeouts, error bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from . import _json, _tracing
from .accounts import Account
from .translate import errors

_ERROR_BODY_CAP = 64 * 1024
USER_AGENT = "mimo_asgi/0.1"
_MAX_URLS = 1024  # parsed MiMo URLs kept, one per account base URL


@dataclass(frozen=True, slots=True)
class Timeouts:
    """connect: TCP+TLS; first_byte: until MiMo answers with a status; idle: the longest silence
    allowed between two reads of a stream (long reasoning can be quiet for minutes)."""

    connect: float = 10.0
    first_byte: float = 60.0
    idle: float = 300.0


class UpstreamClient:
    def __init__(
        self,
        *,
        timeouts: Timeouts = Timeouts(),
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 200,
    ) -> None:
        self.timeouts = timeouts
        self._transport = transport
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._urls: dict[str, httpx.URL] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        """Created lazily, inside the running event loop."""
        if self._client is None:
            t = self.timeouts
            if self._transport is None:
                limits = httpx.Limits(max_connections=self._max_connections,
                                      max_keepalive_connections=self._max_connections)
                self._transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=httpx.Timeout(connect=t.connect, read=t.idle, write=t.connect, pool=t.connect),
                headers={"user-agent": USER_AGENT},
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The connection pool the client sends through: made with the client, which closes it."""
        if self._client is None:
            self.client  # noqa: B018 - the property makes both
        assert self._transport is not None
        return self._transport

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @asynccontextmanager
    async def post(
        self, account: Account, body: dict[str, Any], extra_headers: Mapping[str, str] = {}, *,
        encoded: bytes | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """POST a chat completions body (sent as `encoded` when its JSON is given); yields the
        streaming response once MiMo answered 2xx.

        Raises OpenAIError (status kept for 4xx/429, 502 transport, 504 timeout) before yielding.
        The response is always closed on exit, cancellation included.
        """
        stream = body.get("stream")
        headers = {
            **extra_headers,
            "user-agent": USER_AGENT,
            "authorization": f"Bearer {account.key}",
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }
        _tracing.sent(headers, body)  # tracing: the exchange's trace context (traceparent) to MiMo
        t = self.timeouts
        url = self._urls.get(account.chat_url)
        if url is None:
            if len(self._urls) >= _MAX_URLS:  # a resolver may make accounts as it goes
                self._urls.clear()
            url = self._urls[account.chat_url] = httpx.URL(account.chat_url)
        # a non-stream answer comes with its headers only when it is complete
        read = t.first_byte if stream else max(t.first_byte, t.idle)
        content = encoded or _json.dumps(body)
        headers["content-length"] = str(len(content))
        # The request stays with its response for the whole stream: it is given its JSON as a
        # stream of one part, let go once sent, and the dict is let go here (a long
        # conversation's are the largest things an open stream would hold).
        request = httpx.Request("POST", url, content=_sent_once(content), headers=headers, extensions={
            "timeout": {"connect": t.connect, "read": read, "write": t.connect, "pool": t.connect}})
        del body, encoded, content
        try:
            # Straight to the client's transport (its connection pool): none of the client's
            # cookie jar (no cookie of one account's answer goes out with another's request),
            # redirects, auth or header merging, which cost more than the request itself.
            response = await self.transport.handle_async_request(request)
            response.request = request
        except httpx.ReadTimeout:
            raise errors.upstream_timeout(f"no answer within {read:g}s (the first-byte timeout)") from None
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise errors.upstream_timeout(f"no connection within {t.connect:g}s (the connect timeout)") from None
        except httpx.TimeoutException:
            raise errors.upstream_timeout(f"sending the request took over {t.connect:g}s (the write timeout)") from None
        except httpx.HTTPError as exc:
            raise errors.upstream_unreachable(type(exc).__name__) from None
        # From here on each read may wait `idle`: httpcore reads the request's timeout
        # extension when the body starts streaming, so no per-chunk timer is needed.
        request.extensions["timeout"]["read"] = t.idle
        try:
            if response.status_code >= 300:
                raw = await read_capped(response, _ERROR_BODY_CAP)
                raise errors.from_upstream(response.status_code, raw, response.headers, secrets=(account.key,))
            yield response
        finally:
            await response.aclose()


async def _sent_once(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The body's first `cap` bytes at most; what cannot be read (a timeout, a cut) ends it."""
    parts: list[bytes] = []
    size = 0
    try:
        async for part in response.aiter_bytes():
            parts.append(part[: cap - size])
            size += len(part)
            if size >= cap:
                break
    except httpx.HTTPError:
        pass
    return b"".join(parts)
