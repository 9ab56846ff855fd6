"""No key in any log record or response: every scenario below runs with logging at DEBUG
(httpx and httpcore included) and the autouse guard greps each record's message, arguments,
exception and stack text, and every response the client got, for every key in play."""

from __future__ import annotations

import logging
import socket

import httpx
import pytest
from reliability.outcomes import PATHS, request_body
from support import TEST_KEY, TEST_TP_KEY, wait_for

from mimo_asgi import Account, Limits, Timeouts
from mimo_asgi.testing import Answer, FakeMimo, serve_in_thread

CLIENT_KEY = "sk-client-5a4b3c2d1e0f9988"
SEAL_KEY = "seal-key-never-logged-0123"
SECRETS = (TEST_KEY, TEST_TP_KEY, CLIENT_KEY, SEAL_KEY)
MODES = [("chat", False), ("chat", True), ("responses", False), ("responses", True)]
TIMEOUTS = Timeouts(connect=2, first_byte=1.0, idle=0.3)


def _record_text(record: logging.LogRecord) -> str:
    parts = [str(record.msg), repr(record.args), record.exc_text or "", record.stack_info or "", repr(vars(record))]
    try:
        parts.append(record.getMessage())
    except Exception:  # a malformed record is still searched through its raw parts
        pass
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def secrets_guard(caplog):
    """Collects what the client saw; after the test, nothing seen or logged holds a key."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    yield seen
    records = caplog.get_records("setup") + caplog.get_records("call") + caplog.records
    assert records, "nothing was logged: the guard would prove nothing"
    for record in records:
        text = _record_text(record)
        for secret in SECRETS:
            assert secret not in text, f"{secret[:6]}... in a {record.name} log record: {record.msg!r}"
    for body in seen:
        for secret in SECRETS:
            assert secret not in body, f"{secret[:6]}... in a response: {body[:300]}"


def _account(base_url: str, key: str = TEST_KEY, name: str = "main", **kw) -> Account:
    return Account(name, key, base_url=base_url, upstream="mimo", models={"gpt-5*": "mimo-v2.5-pro"}, **kw)


def _post(seen: list[str], url: str, route: str, stream: bool, body: dict | None = None, **kw) -> httpx.Response:
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "api-key": CLIENT_KEY}
    response = httpx.post(url + PATHS[route], json=body or request_body(route, stream), headers=headers,
                          timeout=kw.pop("timeout", 10), **kw)
    seen.append(response.text + "\n" + repr(response.headers))
    return response


def _gateway(serve_gateway, base_url: str, **options):
    options.setdefault("timeouts", TIMEOUTS)
    return serve_gateway(accounts=[_account(base_url)], api_key=None, seal_key=SEAL_KEY, **options)


ANSWERS = {
    "success": Answer(text="fine"),
    "tool_call_with_reasoning": Answer(reasoning="secretly thinking", text=""),
    "http_400_echoing_key": Answer.error_status(400, f"bad request from {TEST_KEY}"),
    "http_401_echoing_key": Answer(status=401, error={"error": {"message": f"Invalid API Key {TEST_KEY}",
                                                                "param": TEST_KEY, "code": "401", "type": "x"}}),
    "http_402": Answer.insufficient_funds(),
    "http_429": Answer.rate_limited(headers={"retry-after": "1"}),
    "http_500_echoing_key": Answer.error_status(500, f"crashed on {TEST_KEY}"),
    "in_band_echoing_key": Answer.in_band(2, message=f"broke for {TEST_KEY}"),
    "cut": Answer(text="cut short", chunk_size=2, cut_after=3),
    "stall": Answer(text="stalls", stall_after=(2, 5)),
    "silent": Answer(silence_before=5),
}


@pytest.mark.parametrize("route,stream", MODES)
@pytest.mark.parametrize("answer", list(ANSWERS))
def test_upstream_answers(secrets_guard, serve_gateway, fake, fake_url, answer, route, stream):
    url, mw = _gateway(serve_gateway, fake_url)
    fake.respond_with(lambda body: ANSWERS[answer])
    _post(secrets_guard, url, route, stream)
    assert wait_for(lambda: mw.pool.in_flight() == 0)


def test_token_plan_account(secrets_guard, serve_gateway):
    tp_fake = FakeMimo(token_plan=True)
    with serve_in_thread(tp_fake) as tp_url:
        url, _ = serve_gateway(accounts=[_account(tp_url + "/v1", TEST_TP_KEY)], api_key=None, seal_key=SEAL_KEY)
        for route, stream in MODES:
            assert _post(secrets_guard, url, route, stream).status_code == 200
        tp_fake.queue(Answer.error_status(401, f"no such key {TEST_TP_KEY}"))
        assert _post(secrets_guard, url, "chat", False).status_code == 502  # the gateway's key, not the client's


def test_model_name_route_with_the_env_key(secrets_guard, serve_gateway, fake, fake_url):
    url, _ = serve_gateway(api_key=TEST_KEY, base_url=fake_url, seal_key=SEAL_KEY)
    for route, stream in MODES:
        assert _post(secrets_guard, url, route, stream, {**request_body(route, stream), "model": "mimo-v2.5-pro"}
                     ).status_code == 200


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gateway_side_errors(secrets_guard, serve_gateway, fake, fake_url):
    url, _ = _gateway(serve_gateway, fake_url, limits=Limits(max_body_size=4096))
    seen = secrets_guard
    assert httpx.post(url + "/v1/responses", content=b"{nope", headers={"authorization": f"Bearer {CLIENT_KEY}",
                      "content-type": "application/json"}).status_code == 400
    assert _post(seen, url, "responses", False, {"model": "gpt-5.5", "input": "x" * 5000}).status_code == 413
    assert _post(seen, url, "responses", False, {"model": "gpt-5.5", "input": "x", "previous_response_id": "r"}
                 ).status_code in (400, 404)
    assert _post(seen, url, "responses", False, {"model": "gpt-5.5", "input": "x", "tools": [{"type": "mcp"}]}
                 ).status_code == 400
    assert _post(seen, url, "chat", False, {"model": "gpt-5.5", "messages": 3}).status_code == 400
    assert _post(seen, url, "chat", False, {"model": "claude-3", "messages": []}).status_code == 200  # the host's


def test_unreachable_unmapped_and_busy(secrets_guard, serve_gateway, fake, fake_url):
    seen = secrets_guard
    dead, _ = _gateway(serve_gateway, f"http://127.0.0.1:{_closed_port()}/v1")
    for route, stream in MODES:
        assert _post(seen, dead, route, stream).status_code in (502, 503)  # 503 once the account cools down
    unmapped, _ = serve_gateway(resolver=lambda r: Account("m", TEST_KEY, base_url=fake_url, upstream="mimo"),
                                api_key=None, seal_key=SEAL_KEY)
    assert _post(seen, unmapped, "chat", False, {"model": "claude-3", "messages": []}).status_code == 404
    busy, mw = serve_gateway(accounts=[_account(fake_url, max_concurrency=1)], api_key=None, seal_key=SEAL_KEY)
    fake.respond_with(lambda body: Answer(text="x" * 40, reasoning="", stall_after=(2, 3)))
    with httpx.Client(timeout=10) as client, \
            client.stream("POST", busy + PATHS["chat"], json=request_body("chat", True)):
        assert mw.pool.in_flight() == 1  # held while MiMo stalls
        assert _post(seen, busy, "chat", False).status_code in (429, 503)


def test_a_key_pasted_with_its_line_end(secrets_guard, serve_gateway, fake_url):
    # the line end is stripped when the account is built, so the key works and httpx never
    # gets a header it would refuse (and quote in a DEBUG log line)
    url, _ = serve_gateway(accounts=[_account(fake_url, TEST_KEY + "\n")], api_key=None, seal_key=SEAL_KEY)
    response = _post(secrets_guard, url, "chat", False)
    assert response.status_code == 200


def test_unexpected_exception(secrets_guard, serve_gateway, fake_url):
    class Broken(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request):
            raise RuntimeError("boom")

    url, _ = _gateway(serve_gateway, fake_url, transport=Broken())
    for route, stream in MODES:
        assert _post(secrets_guard, url, route, stream).status_code == 500


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_client_disconnects(secrets_guard, serve_gateway, fake, fake_url, route):
    url, mw = _gateway(serve_gateway, fake_url)
    fake.respond_with(lambda body: Answer(text="slow " * 10, reasoning="", chunk_size=3, stall_after=(3, 30)))
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", url + PATHS[route], json=request_body(route, True),
                           headers={"authorization": f"Bearer {CLIENT_KEY}"}) as response:
            secrets_guard.append(next(response.iter_text()))
    fake.respond_with(lambda body: Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        _post(secrets_guard, url, route, False, timeout=0.3)
    assert wait_for(lambda: mw.pool.in_flight() == 0)
