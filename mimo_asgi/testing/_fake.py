"""`FakeMimo`: an ASGI app that answers like Xiaomi MiMo's OpenAI-compatible API."""

from __future__ import annotations

import hashlib
import inspect
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from .. import _json
from starlette.types import Receive, Scope, Send

from ._reply import RecordedRequest, Reply, lifespan, read_body
from ._script import Answer, error_body
from ._validate import Host, incorrect, validate

Responder = Callable[[dict[str, Any]], "Answer | Awaitable[Answer]"]

DEFAULT_MODELS: tuple[str, ...] = (
    "mimo-v2.5-pro", "mimo-v2.5", "mimo-v2-pro", "mimo-v2-omni",
    "mimo-v2.5-pro-ultraspeed", "mimo-v2.6-pro", "mimo-v2.6-flash",
)  # fmt: skip
# Token Plan gateways serve a subset: no ultraspeed (apply-for, PAYG only).
TOKEN_PLAN_MODELS: tuple[str, ...] = tuple(m for m in DEFAULT_MODELS if m != "mimo-v2.5-pro-ultraspeed")
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
_SECRET_HEADERS = frozenset({b"authorization", b"api-key"})
_MINIMAX_PREFIX = "sk-cp-"
_CREATED = 1_764_000_000


def key_fingerprint(key: str) -> str:
    """A stable, non-reversible name for a key: `sha256:` + 8 hex."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:8]


class FakeMimo:
    """An ASGI app playing one MiMo host.

    - `token_plan=True` plays a Token Plan host: only `tp-` keys authenticate (PAYG: only
      `sk-`); `keys`, if given, further limits which keys authenticate.
    - `web_search_plugin`: whether the native `web_search` tool is activated (default: off on
      Token Plan, on for PAYG). `models`: the ids served (default `DEFAULT_MODELS`, or
      `TOKEN_PLAN_MODELS` on Token Plan); ids are case-sensitive as on MiMo.
    - `data_prefix`: `"data: "` or `"data:"` for the stream's data lines.

    Routes: `POST /v1/chat/completions` and `GET /v1/models`, with or without the `/v1`.
    Requests MiMo would reject get MiMo's status and body; valid ones get the next queued
    answer, else `respond_with`'s answer, else `Answer()`. Every request is recorded in
    `requests`, rejected ones included.
    """

    def __init__(
        self,
        *,
        token_plan: bool = False,
        web_search_plugin: bool | None = None,
        keys: Iterable[str] | None = None,
        models: Iterable[str] | None = None,
        data_prefix: str = "data: ",
    ) -> None:
        self.token_plan = token_plan
        self.key_prefix = "tp-" if token_plan else "sk-"
        self.keys = frozenset(keys) if keys is not None else None
        for key in self.keys or ():
            if not key.startswith(self.key_prefix) or key.startswith(_MINIMAX_PREFIX):
                raise ValueError(f"a {'Token Plan' if token_plan else 'PAYG'} host only accepts {self.key_prefix} keys")
        plugin = not token_plan if web_search_plugin is None else web_search_plugin
        served = models if models is not None else (TOKEN_PLAN_MODELS if token_plan else DEFAULT_MODELS)
        self.host = Host(models=frozenset(served), web_search_plugin=plugin)
        self.models = tuple(served)
        self.data_prefix = data_prefix
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most chat requests handled at once since the last reset
        self._queue: deque[Answer] = deque()
        self._responder: Responder | None = None

    @property
    def api_key(self) -> str:
        """A key this fake accepts."""
        if self.keys:
            return min(self.keys)
        return self.key_prefix + "fake-0123456789abcdef"

    def queue(self, *answers: Answer) -> None:
        """The next accepted chat requests get these answers, in order."""
        self._queue.extend(answers)

    def respond_with(self, fn: Responder | None) -> None:
        """Answer accepted requests with `fn(body)` (sync or async) once the queue is empty."""
        self._responder = fn

    def reset(self) -> None:
        """Forget queued answers, the responder, recorded requests and counters."""
        self._queue.clear()
        self._responder = None
        self.requests.clear()
        self.max_in_flight = 0

    def accepts(self, key: str | None) -> bool:
        """Whether this host authenticates `key` (prefix of the host kind, then `keys`).
        `sk-cp-` is MiniMax's key format, never a MiMo key."""
        if not key or not key.startswith(self.key_prefix) or key.startswith(_MINIMAX_PREFIX):
            return False
        return self.keys is None or key in self.keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:  # websocket: not a MiMo route
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = await read_body(receive)
        if raw is None:
            return
        key = _key(scope["headers"])
        record = self._record(scope, raw, key)
        reply = Reply(record, receive, send)
        path, method = scope["path"].rstrip("/") or "/", scope["method"]
        known = path in CHAT_PATHS or path in MODELS_PATHS
        if not known:
            await reply.json(404, error_body(404, f"{method} {path}"))
        elif (method != "POST" and path in CHAT_PATHS) or (method != "GET" and path in MODELS_PATHS):
            await reply.json(405, error_body(405, f"{method} {path}"))
        elif not self.accepts(key):
            await reply.error(401, error_body(401), record.stream)
        elif path in MODELS_PATHS:
            await reply.json(200, self._model_list())
        else:
            await self._chat(record, reply)

    def _model_list(self) -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": _CREATED, "owned_by": "xiaomi"} for m in self.models]
        return {"object": "list", "data": data}

    async def _chat(self, record: RecordedRequest, reply: Reply) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            rejection = incorrect("Invalid JSON body") if record.body is None else validate(record.body, self.host)
            if rejection is not None:
                await reply.error(rejection.status, rejection.body, record.stream)
                return
            await reply.answer(await self._next_answer(record.body), self.data_prefix)
        finally:
            self.in_flight -= 1

    async def _next_answer(self, body: dict[str, Any]) -> Answer:
        if self._queue:
            return self._queue.popleft()
        if self._responder is None:
            return Answer()
        answer = self._responder(body)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    def _record(self, scope: Scope, raw: bytes, key: str | None) -> RecordedRequest:
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            headers=_headers(scope["headers"]),
            raw=raw,
            body=_parse(raw),
            key_fingerprint=key_fingerprint(key) if key else None,
        )
        self.requests.append(record)
        return record


def _parse(raw: bytes) -> Any:
    try:
        return _json.loads(raw) if raw else None
    except _json.JSONDecodeError:
        return None


def _key(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `api-key: <key>`."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        if name.lower() in _SECRET_HEADERS:
            found.setdefault(name.lower(), value.decode("latin-1").strip())
    bearer = found.get(b"authorization", "")
    scheme, _, token = bearer.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return found.get(b"api-key") or None


def _headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lowercased names; repeated names joined with ", "; secrets replaced by fingerprints."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if raw_name.lower() in _SECRET_HEADERS:
            value = _redact(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _redact(value: str) -> str:
    scheme, space, token = value.strip().partition(" ")
    if space and scheme.lower() == "bearer":
        return f"{scheme} {key_fingerprint(token.strip())}"
    return key_fingerprint(value.strip())
