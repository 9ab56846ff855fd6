"""A frame-level Responses WebSocket client for the tests (the `websockets` sync client), and
what every answer must look like.

`Frames.answer()` reads one `response.create`'s answer: its events up to and including the
first terminal or `error` frame, each checked to be one JSON object in one text frame (a binary
frame fails the test); `keepalive` frames are kept aside in `keepalives`.
"""

from __future__ import annotations

import json
from typing import Any

from unit.invariants import check_responses_stream
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

PATH = "/v1/responses"
BETA = {"OpenAI-Beta": "responses_websockets=2026-02-06"}
TERMINALS = frozenset({"response.completed", "response.failed", "response.incomplete"})
ENDS = TERMINALS | {"error"}
RECV_TIMEOUT = 30.0  # a hang fails the test; answers here take milliseconds
ERROR_FIELDS = {"message", "type", "param", "code"}


def ws_url(http_url: str, path: str = PATH) -> str:
    return "ws" + http_url.removeprefix("http") + path


def handshake_status(http_url: str, path: str = PATH, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a refused upgrade is answered with (fails if the upgrade is accepted)."""
    try:
        with connect(ws_url(http_url, path), additional_headers=headers, open_timeout=10):
            pass
    except InvalidStatus as exc:
        return exc.response.status_code
    raise AssertionError("the WebSocket upgrade was accepted")


class Frames:
    """One client socket: JSON frames out, the server's frames in."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.keepalives: list[dict[str, Any]] = []

    def send(self, frame: dict[str, Any] | str | bytes) -> None:
        self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """The next frame: a text frame holding one JSON object with a string `type`."""
        message = self.ws.recv(timeout=timeout)
        assert isinstance(message, str), f"a binary frame: {message[:100]!r}"
        event = json.loads(message)  # one JSON value per frame, or this raises
        assert isinstance(event, dict) and isinstance(event.get("type"), str), message[:300]
        return event

    def answer(self, timeout: float = RECV_TIMEOUT) -> list[dict[str, Any]]:
        """The frames answering one `response.create`, up to its terminal or `error` frame."""
        events: list[dict[str, Any]] = []
        while True:
            event = self.recv(timeout)
            if event["type"] == "keepalive":
                assert not any(e["type"] in ENDS for e in events)
                self.keepalives.append(event)
                continue
            events.append(event)
            if event["type"] in ENDS:
                return events

    def create(self, **fields: Any) -> list[dict[str, Any]]:
        """Send a `response.create` with `fields` and read its answer."""
        self.send({"type": "response.create", **fields})
        return self.answer()

    def close_code(self, timeout: float = RECV_TIMEOUT) -> int | None:
        """Read until the server closes the socket; the close code it sent."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                self.ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else None


def completed(events: list[dict[str, Any]], model: str = "gpt-5.5") -> dict[str, Any]:
    """The final response of an answer that must be a whole, valid, completed stream."""
    assert events[-1]["type"] == "response.completed", events[-1]
    response = check_responses_stream(events)
    assert response["model"] == model
    return response


def error_of(events: list[dict[str, Any]], status: int, code: str | None = None) -> dict[str, Any]:
    """The one `error` frame an answer must be, OpenAI-shaped, with that status (and code)."""
    assert [e["type"] for e in events] == ["error"], [e["type"] for e in events]
    frame = events[0]
    assert frame["status"] == status, frame
    assert set(frame["error"]) == ERROR_FIELDS and frame["error"]["message"], frame
    assert isinstance(frame["headers"], dict), frame
    if code is not None:
        assert frame["error"]["code"] == code, frame
    return frame


def outcome_of(events: list[dict[str, Any]], model: str = "gpt-5.5") -> str:
    """What one answer came to, checked: "completed", "incomplete" or "failed" for one whole
    valid stream (one terminal, its last frame), "error <status>" for one OpenAI-shaped error
    frame. Raises AssertionError naming the broken rule."""
    if events and events[0]["type"] == "error":
        frame = error_of(events, events[0].get("status"))
        assert isinstance(frame["status"], int) and 400 <= frame["status"] < 600, frame
        return f"error {frame['status']}"
    response = check_responses_stream(events)
    assert events[-1]["type"] in TERMINALS, events[-1]["type"]
    assert response["model"] == model, response["model"]
    return response["status"]


def output_text(response: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in response["output"] if item["type"] == "message"
                   for part in item["content"])
