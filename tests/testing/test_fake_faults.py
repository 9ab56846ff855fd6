"""Faults seen by a real client over a real socket: cuts, slow first byte, stalls, disconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mimo_asgi.testing import Answer, FakeMimo, serve_in_thread

BODY = {"model": "mimo-v2.5-pro", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeMimo, httpx.Client]]:
    fake = FakeMimo()
    with serve_in_thread(fake) as url:
        with httpx.Client(base_url=url + "/v1", headers={"authorization": f"Bearer {fake.api_key}"}) as client:
            yield fake, client


@pytest.fixture
def fake(served: tuple[FakeMimo, httpx.Client]) -> FakeMimo:
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served: tuple[FakeMimo, httpx.Client]) -> httpx.Client:
    return served[1]


def read_events(client: httpx.Client, body: dict[str, Any], timeout: float = 5.0) -> tuple[list[str], BaseException | None]:
    """Data lines received before the stream ended, and the error that ended it (if any)."""
    lines: list[str] = []
    try:
        with client.stream("POST", "/chat/completions", json=body, timeout=timeout) as response:
            for line in response.iter_lines():
                if line:
                    lines.append(line)
    except httpx.HTTPError as exc:
        return lines, exc
    return lines, None


def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_cut_stream_breaks_the_connection_without_done(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(cut_after=3))
    lines, error = read_events(client, BODY)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(lines) == 3 and "[DONE]" not in "".join(lines)
    assert fake.requests[-1].status == 200


def test_cut_after_headers_only(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(cut_after=0))
    lines, error = read_events(client, BODY)
    assert lines == [] and isinstance(error, httpx.RemoteProtocolError)


def test_cut_non_stream_body(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(cut_after=0))
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/chat/completions", json={**BODY, "stream": False})


def test_connection_is_usable_after_a_cut(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(cut_after=1))
    read_events(client, BODY)
    lines, error = read_events(client, BODY)
    assert error is None and lines[-1] == "data: [DONE]"


def test_silence_before_delays_the_first_byte(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(silence_before=0.4))
    started = time.monotonic()
    with client.stream("POST", "/chat/completions", json=BODY) as response:
        assert time.monotonic() - started >= 0.4
        assert response.status_code == 200
        response.read()


def test_silence_before_also_delays_errors(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer.rate_limited(silence_before=0.3))
    started = time.monotonic()
    assert client.post("/chat/completions", json=BODY).status_code == 429
    assert time.monotonic() - started >= 0.3


def test_stall_then_resume(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(stall_after=(2, 0.4)))
    arrivals: list[float] = []
    with client.stream("POST", "/chat/completions", json=BODY) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert gaps[1] >= 0.35 and max(gaps[:1] + gaps[2:]) < 0.35


def test_stall_trips_a_read_timeout_and_the_disconnect_is_seen(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(stall_after=(1, 30)))
    lines, error = read_events(client, BODY, timeout=0.3)
    assert isinstance(error, httpx.ReadTimeout) and len(lines) == 1
    wait_for(lambda: fake.requests[-1].disconnected)  # the 30 s stall was cancelled
    wait_for(lambda: fake.in_flight == 0)


def test_disconnect_during_silence_is_seen(fake: FakeMimo, client: httpx.Client) -> None:
    fake.queue(Answer(silence_before=30))
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", json=BODY, timeout=0.3)
    wait_for(lambda: fake.requests[-1].disconnected)
    assert fake.requests[-1].status is None


def test_completed_answers_are_not_marked_disconnected(fake: FakeMimo, client: httpx.Client) -> None:
    read_events(client, BODY)
    client.post("/chat/completions", json={**BODY, "stream": False})
    time.sleep(0.1)
    assert [(r.status, r.disconnected) for r in fake.requests] == [(200, False), (200, False)]
