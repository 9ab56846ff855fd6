"""Every request is recorded, rejected ones included, and raw keys never appear."""

from __future__ import annotations

import json

import anyio
import httpx

from mimo_asgi.testing import Answer, FakeMimo, key_fingerprint

SECRET = "sk-very-secret-key-123456789"
BODY = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}]}


def send(fake: FakeMimo, *requests: tuple[str, str, dict[str, str], bytes]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
            return [await client.request(m, p, headers=h, content=c) for m, p, h, c in requests]

    return anyio.run(go)


def test_key_fingerprint_is_short_stable_and_not_the_key() -> None:
    fingerprint = key_fingerprint(SECRET)
    assert fingerprint == key_fingerprint(SECRET) != key_fingerprint(SECRET + "x")
    assert fingerprint.startswith("sha256:") and len(fingerprint) == len("sha256:") + 8
    assert SECRET not in fingerprint


def test_requests_are_recorded_with_fingerprints_only() -> None:
    fake = FakeMimo()
    raw = json.dumps(BODY).encode()
    send(
        fake,
        ("POST", "/v1/chat/completions", {"authorization": f"Bearer {SECRET}", "x-trace": "t1"}, raw),
        ("POST", "/v1/chat/completions", {"api-key": SECRET}, raw),
        ("POST", "/v1/chat/completions", {"authorization": f"Bearer {SECRET}", "api-key": SECRET}, raw),
        ("GET", "/v1/models", {"authorization": f"Bearer {SECRET}"}, b""),
    )
    first, second, both, models = fake.requests
    fingerprint = key_fingerprint(SECRET)
    assert first.headers["authorization"] == f"Bearer {fingerprint}" and first.headers["x-trace"] == "t1"
    assert second.headers["api-key"] == fingerprint
    assert both.headers["authorization"] == f"Bearer {fingerprint}" and both.headers["api-key"] == fingerprint
    assert all(r.key_fingerprint == fingerprint for r in fake.requests)
    assert (first.method, first.path, first.raw, first.body, first.status) == ("POST", "/v1/chat/completions", raw, BODY, 200)
    assert (models.method, models.path, models.body, models.status) == ("GET", "/v1/models", None, 200)
    assert SECRET not in repr(fake.requests) and SECRET not in str([vars(r) for r in fake.requests])


def test_rejected_requests_are_recorded_with_their_status() -> None:
    fake = FakeMimo()
    bad_model = json.dumps({**BODY, "model": "gpt-5"}).encode()
    send(
        fake,
        ("POST", "/v1/chat/completions", {}, json.dumps(BODY).encode()),
        ("POST", "/v1/chat/completions", {"api-key": SECRET}, bad_model),
        ("POST", "/v1/chat/completions", {"api-key": SECRET}, b"{oops"),
        ("POST", "/v1/nowhere", {"api-key": SECRET}, b""),
    )
    assert [r.status for r in fake.requests] == [401, 400, 400, 404]
    assert fake.requests[0].key_fingerprint is None and "authorization" not in fake.requests[0].headers
    assert fake.requests[2].body is None and fake.requests[2].raw == b"{oops"


def test_malformed_authorization_is_fingerprinted_whole() -> None:
    fake = FakeMimo()
    send(fake, ("POST", "/v1/chat/completions", {"authorization": SECRET}, json.dumps(BODY).encode()))
    recorded = fake.requests[0]
    assert recorded.headers["authorization"] == key_fingerprint(SECRET)
    assert recorded.status == 401 and SECRET not in repr(recorded)


def test_stream_flag_and_order() -> None:
    fake = FakeMimo()
    send(
        fake,
        ("POST", "/v1/chat/completions", {"api-key": SECRET}, json.dumps({**BODY, "stream": True}).encode()),
        ("POST", "/v1/chat/completions", {"api-key": SECRET}, json.dumps(BODY).encode()),
    )
    assert [r.stream for r in fake.requests] == [True, False]
    assert fake.requests[0].at <= fake.requests[1].at


def test_reset_forgets_requests_and_script() -> None:
    fake = FakeMimo()
    fake.queue(Answer("queued"))
    fake.respond_with(lambda body: Answer("responder"))
    send(fake, ("POST", "/v1/chat/completions", {"api-key": SECRET}, json.dumps(BODY).encode()))
    fake.queue(Answer("left over"))
    fake.reset()
    assert fake.requests == [] and fake.max_in_flight == 0
    (response,) = send(fake, ("POST", "/v1/chat/completions", {"api-key": SECRET}, json.dumps(BODY).encode()))
    assert response.json()["choices"][0]["message"]["content"] == "Hello from fake MiMo."


def test_max_in_flight_counts_concurrent_requests() -> None:
    fake = FakeMimo()
    fake.respond_with(lambda body: Answer(silence_before=0.2))

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake") as client:
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(lambda: client.post("/v1/chat/completions", json=BODY, headers={"api-key": SECRET}))

    anyio.run(go)
    assert fake.max_in_flight == 3 and fake.in_flight == 0
