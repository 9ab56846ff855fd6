"""What the host app sees: untouched requests, unread bodies, lifespan."""

import pytest
from asgiref.testing import ApplicationCommunicator

from support import RecordingHost, http_scope

from mimo_asgi import Account, Limits, MimoMiddleware

pytestmark = pytest.mark.anyio


def middleware(host, **kw):
    kw.setdefault("api_key", "sk-test-env")
    kw.setdefault("base_url", "http://127.0.0.1:9/v1")
    return MimoMiddleware(host, **kw)


async def test_non_mimo_post_reaches_host_with_identical_bytes_and_chunking():
    host = RecordingHost()
    parts = [b'{"model": "gpt-4o",', b' "input": "h\xc3\xa9llo",', b' "stream": true}']
    comm = ApplicationCommunicator(middleware(host), http_scope())
    for i, part in enumerate(parts):
        await comm.send_input({"type": "http.request", "body": part, "more_body": i < len(parts) - 1})
    start = await comm.receive_output(1)
    body = await comm.receive_output(1)
    assert start["status"] == 200 and body["body"] == b"host"
    assert [m["body"] for m in host.received] == parts
    assert [m.get("more_body") for m in host.received] == [True, True, False]
    assert host.scopes[0]["headers"] == http_scope()["headers"]


async def test_replayed_request_then_forwards_disconnect():
    seen = []

    async def host(scope, receive, send):
        seen.append(await receive())
        seen.append(await receive())  # after the body: the real receive, i.e. the disconnect
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    comm = ApplicationCommunicator(middleware(host), http_scope())
    await comm.send_input({"type": "http.request", "body": b'{"model": "gpt-4o"}'})
    await comm.send_input({"type": "http.disconnect"})
    assert (await comm.receive_output(1))["status"] == 204
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/health"), ("GET", "/v1/responses"), ("POST", "/v1/embeddings"),
                                              ("PUT", "/v1/chat/completions"), ("POST", "/v1/responses/input_tokens")])
async def test_other_requests_never_have_their_body_read(method, path):
    calls = []

    async def receive():
        calls.append("receive")
        return {"type": "http.request", "body": b"{}"}

    async def host(scope, receive_, send):
        assert receive_ is receive  # the very same callable: nothing wrapped, nothing read
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    await middleware(host)(http_scope(method, path), receive, send)
    assert calls == [] and sent[0]["status"] == 200


@pytest.mark.parametrize(("path", "options"), [("/v1/realtime", {}), ("/v1/responses", {"websocket": "host"})])
async def test_websocket_scope_passes_untouched(path, options):
    """WebSockets on other paths, and on the Responses paths when the host serves them itself."""
    host = RecordingHost()
    scope = {"type": "websocket", "path": path, "headers": [], "query_string": b""}
    comm = ApplicationCommunicator(middleware(host, **options), scope)
    await comm.send_input({"type": "websocket.connect"})
    assert (await comm.receive_output(1))["type"] == "websocket.accept"
    assert host.received == [{"type": "websocket.connect"}] and host.scopes == [scope]


async def test_lifespan_passes_through_and_shutdown_closes_the_upstream_pool():
    host = RecordingHost()
    mw = middleware(host)
    _ = mw.upstream.client  # open the pool as a request would
    comm = ApplicationCommunicator(mw, {"type": "lifespan", "asgi": {"version": "3.0"}})
    await comm.send_input({"type": "lifespan.startup"})
    assert (await comm.receive_output(1))["type"] == "lifespan.startup.complete"
    client = mw.upstream._client
    await comm.send_input({"type": "lifespan.shutdown"})
    assert (await comm.receive_output(1))["type"] == "lifespan.shutdown.complete"
    assert client.is_closed and mw.upstream._client is None


async def test_oversize_body_is_413_without_reaching_host():
    host = RecordingHost()
    comm = ApplicationCommunicator(middleware(host, limits=Limits(max_body_size=100)), http_scope())
    await comm.send_input({"type": "http.request", "body": b'{"model": "gpt-4o", "input": "' + b"x" * 200 + b'"}'})
    start = await comm.receive_output(1)
    body = await comm.receive_output(1)
    assert start["status"] == 413 and b'"request_too_large"' in body["body"]
    assert host.received == []


async def test_declared_content_length_over_cap_is_413_before_reading():
    host = RecordingHost()
    comm = ApplicationCommunicator(middleware(host, limits=Limits(max_body_size=100)),
                                   http_scope(headers=[(b"content-length", b"5000")]))
    start = await comm.receive_output(1)
    assert start["status"] == 413


@pytest.mark.parametrize(("body", "code"), [(b"{not json", "invalid_json"), (b"[1, 2]", "invalid_json"),
                                            (b'{"model": 5}', None), (b'{"input": "x"}', None)])
async def test_unroutable_bodies_are_openai_shaped_400(body, code):
    import json

    host = RecordingHost()
    comm = ApplicationCommunicator(middleware(host), http_scope())
    await comm.send_input({"type": "http.request", "body": body})
    start = await comm.receive_output(1)
    payload = json.loads((await comm.receive_output(1))["body"])
    assert start["status"] == 400
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert payload["error"]["type"] == "invalid_request_error" and payload["error"]["code"] == code
    assert host.received == []


async def test_client_leaving_during_body_read_reaches_nobody():
    host = RecordingHost()
    comm = ApplicationCommunicator(middleware(host), http_scope())
    await comm.send_input({"type": "http.request", "body": b'{"model":', "more_body": True})
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(1)
    assert host.received == []


async def test_non_mimo_account_from_resolver_passes_through_and_releases():

    released = []

    class L:
        account = Account("openai-1", "sk-openai", base_url="https://api.openai.com/v1")

        def release(self):
            released.append(1)

    host = RecordingHost()
    comm = ApplicationCommunicator(middleware(host, resolver=lambda req: L()), http_scope())
    await comm.send_input({"type": "http.request", "body": b'{"model": "gpt-4o"}'})
    assert (await comm.receive_output(1))["status"] == 200
    await comm.wait(1)
    assert released == [1]


def pooled(host, upstream_calls):
    """The built-in pool (one MiMo account for `gpt-5*`) with an upstream that records and fails."""
    import httpx

    def handler(request):
        upstream_calls.append(request)
        return httpx.Response(500, json={"error": {"message": "down"}})

    account = Account("mimo-1", "tp-test", base_url="http://mimo.test/v1", upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"})
    return MimoMiddleware(host, accounts=[account], api_key=None, seal_key="k", transport=httpx.MockTransport(handler))


async def test_pool_hands_the_host_a_non_mimo_body_as_the_same_message_and_holds_no_lease():
    host, calls = RecordingHost(), []
    mw = pooled(host, calls)
    message = {"type": "http.request", "body": b'{"input": "hi", "model": "claude-3", "stream": true}'}
    comm = ApplicationCommunicator(mw, http_scope())
    await comm.send_input(message)
    assert (await comm.receive_output(1))["status"] == 200
    assert host.received == [message]
    assert mw.pool.in_flight() == 0 and calls == []


@pytest.mark.parametrize("body", [b'{"model": "\\u0047PT-5.1", "input": "hi"}',  # escaped, upper case
                                  b'{"input": "hi", "model": " gpt-5.1 "}',
                                  b'{"model": "claude-3", "input": "hi", "model": "gpt-5.1"}'])  # the last one wins
async def test_pool_reads_the_model_the_way_the_full_parse_does(body):
    host, calls = RecordingHost(), []
    comm = ApplicationCommunicator(pooled(host, calls), http_scope())
    await comm.send_input({"type": "http.request", "body": body})
    assert (await comm.receive_output(1))["status"] == 502  # MiMo's route was taken, and MiMo failed
    await comm.wait(1)
    assert host.received == [] and len(calls) == 1


@pytest.mark.parametrize(("body", "code"), [(b'{"model": "claude-3", "input": [}', "invalid_json"),
                                            (b'{"model": "claude-3"} trailing', "invalid_json"),
                                            (b'{"model": ["claude-3"]}', None)])
async def test_pool_still_refuses_a_malformed_body_whatever_model_it_names(body, code):
    import json

    host, calls = RecordingHost(), []
    comm = ApplicationCommunicator(pooled(host, calls), http_scope())
    await comm.send_input({"type": "http.request", "body": body})
    assert (await comm.receive_output(1))["status"] == 400
    assert json.loads((await comm.receive_output(1))["body"])["error"]["code"] == code
    assert host.received == [] and calls == []


def test_routing_decisions_are_remembered_within_a_bound():
    mw = pooled(RecordingHost(), [])
    names = [f"claude-{i}" for i in range(3000)]
    assert all(mw.declines(name) for name in names)
    assert not mw.declines("gpt-5.1") and not mw.declines("mimo-v2-flash") and not mw.declines("GPT-5")
    assert len(mw.runtime._declined) <= 1024
