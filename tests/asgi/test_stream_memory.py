"""What an open stream holds: not the conversation. Once MiMo's answer is streaming, neither the
client's parsed body, nor the MiMo request made of it, nor that request's JSON is kept; a long
conversation costs memory while it is translated and sent, not for as long as MiMo talks."""

import gc
import json
import tracemalloc

import anyio
import httpx
import pytest

from mimo_asgi import Account, MimoMiddleware

pytestmark = pytest.mark.anyio

CHUNK = ('data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"mimo-v2.5-pro",'
         '"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n').encode()
TURNS = 400  # about 1 MB of history


class Stalling(httpx.AsyncByteStream):
    """MiMo's answer: one delta, then silence until released."""

    def __init__(self, release: anyio.Event) -> None:
        self.release = release

    async def __aiter__(self):
        yield CHUNK
        await self.release.wait()
        yield b"data: [DONE]\n\n"


def history() -> bytes:
    items = []
    for n in range(TURNS):
        items.append({"type": "message", "role": "user", "content": f"turn {n}: " + "x" * 1200})
        items.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "y" * 1200}]})
    return json.dumps({"model": "gpt-5.5", "input": items, "stream": True, "store": False}).encode()


class MiMo(httpx.AsyncBaseTransport):
    """Reads the request's body as a connection does (httpx's MockTransport keeps it), then answers."""

    def __init__(self, release: anyio.Event) -> None:
        self.release = release
        self.sent: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        size = 0
        async for part in request.stream:
            size += len(part)
        assert int(request.headers["content-length"]) == size
        self.sent.append(size)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stalling(self.release))


async def test_an_open_stream_does_not_hold_the_conversation():
    release = anyio.Event()
    mimo = MiMo(release)

    async def host(scope, receive, send):
        raise AssertionError("MiMo's request")

    account = Account("a", "sk-test-0123456789abcdef", base_url="http://mimo.test/v1", upstream="mimo",
                      models={"gpt-5*": "mimo-v2.5-pro"})
    app = MimoMiddleware(host, accounts=[account], api_key=None, store=None, web_search=None,
                         transport=mimo, keepalive_seconds=0)
    body = history()
    streaming = anyio.Event()
    gone = anyio.Event()

    async def receive():
        nonlocal body
        if body:
            message, body = {"type": "http.request", "body": body, "more_body": False}, b""
            return message
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body" and b"output_text.delta" in message.get("body", b""):
            streaming.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/responses", "raw_path": b"/v1/responses", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 8000)}
    size = len(body)
    gc.collect()
    tracemalloc.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, scope, receive, send)
            with anyio.fail_after(10):
                await streaming.wait()
            gc.collect()
            held, peak = tracemalloc.get_traced_memory()
            release.set()
    finally:
        tracemalloc.stop()
        await app.aclose()
    assert mimo.sent and mimo.sent[0] > size * 0.9  # the whole conversation went to MiMo
    assert peak > 2 * size  # parsed, translated and encoded while it was sent
    assert held < size / 4, f"{held} bytes held by an open stream of a {size}-byte conversation"
