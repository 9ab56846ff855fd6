"""What a socket holds: a client leaving mid-response cancels MiMo's request and gives the lease
back (the exchange reports it cancelled); a host stream is cancelled too; a connection past its
age gets `websocket_connection_limit_reached` and a 1000 close; a closed socket is no longer
counted against the cap."""

from __future__ import annotations

import logging
import socket
import time

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from support import TEST_KEY, wait_for
from websocket.wsclient import BETA, Frames, completed, error_of

from mimo_asgi import Account, Limits
from mimo_asgi.testing import Answer

MODELS = {"gpt-5*": "mimo-v2.5-pro"}


def _leave(ws: Frames, how: str) -> None:
    if how == "close-frame":
        ws.ws.close()
    else:  # as Codex exits: the TCP connection dropped without a close frame
        ws.ws.socket.shutdown(socket.SHUT_RDWR)
        ws.ws.socket.close()


@pytest.mark.parametrize("how", ["close-frame", "tcp-drop"])
def test_leaving_mid_response_cancels_mimo_and_returns_the_lease(serve_gateway, fake, fake_url, open_ws, caplog, how):
    caplog.set_level(logging.INFO, logger="mimo_asgi")
    events: list = []
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_gateway(accounts=[account], api_key=None, seal_key="k", on_usage=events.append)
    ws = open_ws(url, headers=BETA)
    # events: role, "a sl", "ow a", "nswe", then the stall
    fake.queue(Answer(text="a slow answer " * 8, reasoning="", chunk_size=4, stall_after=(4, 30)))
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "hi"})
    while ws.recv().get("delta") != "nswe":
        pass
    assert mw.pool.in_flight() == 1
    _leave(ws, how)
    assert wait_for(lambda: fake.requests and fake.requests[-1].disconnected, 5), "MiMo's request still running"
    assert wait_for(lambda: mw.pool.in_flight() == 0, 5), "the lease was not returned"
    assert wait_for(lambda: fake.in_flight == 0 and mw.runtime.websockets == 0 and mw.active_streams == 0, 5)
    assert [e.outcome for e in events] == ["cancelled"]
    assert any("outcome=cancelled" in r.getMessage() for r in caplog.records)


def test_leaving_before_the_first_event_cancels_mimo(serve_gateway, fake, fake_url, open_ws):
    events: list = []
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_gateway(accounts=[account], api_key=None, seal_key="k", on_usage=events.append)
    ws = open_ws(url)
    fake.queue(Answer(silence_before=30))
    ws.send({"type": "response.create", "model": "gpt-5.5", "input": "hi"})
    assert wait_for(lambda: fake.in_flight == 1, 5)
    ws.ws.close()
    assert wait_for(lambda: fake.requests[-1].disconnected and mw.pool.in_flight() == 0, 5)
    assert wait_for(lambda: [e.outcome for e in events] == ["cancelled"], 5)


class SlowHost:
    """A host whose SSE answer starts and then goes silent; records whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False
        self.running = False

    async def responses(self, request: Request):
        await request.body()

        async def stream():
            self.running = True
            try:
                yield b'data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_h","status":' \
                      b'"in_progress","output":[]}}\n\n'
                await anyio.sleep(30)
            except BaseException:
                self.cancelled = True
                raise
            finally:
                self.running = False

        return StreamingResponse(stream(), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/responses", self.responses, methods=["POST"])])


def test_leaving_mid_response_cancels_a_bridged_host_answer(serve_with_host, fake_url, open_ws):
    host = SlowHost()
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_with_host(host.app(), accounts=[account], api_key=None, seal_key="k")
    ws = open_ws(url)
    ws.send({"type": "response.create", "model": "host-model", "input": "hi"})
    assert ws.recv()["type"] == "response.created"
    ws.ws.close()
    assert wait_for(lambda: host.cancelled and not host.running, 5), "the host's answer still runs"
    assert wait_for(lambda: mw.runtime.websockets == 0, 5)


def test_a_frame_after_the_connection_age_gets_the_limit_error_and_a_1000_close(serve_gateway, fake, fake_url,
                                                                                open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, mw = serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(websocket_age=1.0))
    ws = open_ws(url)
    opened = time.monotonic()
    completed(ws.create(model="gpt-5.5", input="young enough"))
    time.sleep(max(0.0, 1.2 - (time.monotonic() - opened)))
    frame = error_of(ws.create(model="gpt-5.5", input="too old"), 400, "websocket_connection_limit_reached")
    assert "Create a new websocket connection" in frame["error"]["message"]
    assert ws.close_code() == 1000
    assert len(fake.requests) == 1
    assert wait_for(lambda: mw.runtime.websockets == 0, 5)
    completed(open_ws(url).create(model="gpt-5.5", input="a new connection"))  # clients reconnect


def test_an_age_of_zero_refuses_every_frame(serve_gateway, fake, fake_url, open_ws):
    account = Account("main", TEST_KEY, base_url=fake_url, upstream="mimo", models=MODELS)
    url, _ = serve_gateway(accounts=[account], api_key=None, seal_key="k", limits=Limits(websocket_age=0))
    ws = open_ws(url)
    error_of(ws.create(model="gpt-5.5", generate=False, input="hi"), 400, "websocket_connection_limit_reached")
    assert ws.close_code() == 1000
    assert fake.requests == []
