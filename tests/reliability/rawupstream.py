"""A byte-level fake upstream for what the faithful fake cannot say: garbage and oversize
lines, resets, half-sent heads, usage that arrives before a stall.

`RawUpstream(script)` serves HTTP/1.1 on 127.0.0.1 from a thread. `script(body)` gets the
parsed request body and returns the steps to play: bytes (sent as they are, the status line
and headers included), `Stall(seconds)` (silence, ended early when the client leaves) or
`RESET` (an RST instead of a FIN). Every response ends by closing the connection.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Stall:
    seconds: float


RESET = object()
Step = bytes | Stall | object
Script = Callable[[Any], list[Step]]


@dataclass
class RawRequest:
    head: bytes
    body: Any
    disconnected: bool = False  # the client left during a Stall
    finished: bool = False  # every step was played
    ended: threading.Event = field(default_factory=threading.Event, repr=False)  # set once the script ended


def sse_head(status: int = 200, content_type: bytes = b"text/event-stream") -> bytes:
    """A head without length or chunking: the body runs until the connection closes."""
    return b"HTTP/1.1 %d X\r\ncontent-type: %s\r\nconnection: close\r\n\r\n" % (status, content_type)


def json_response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 %d X\r\ncontent-type: %s\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, content_type, len(body))) + body


def data(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
    out: dict[str, Any] = {"id": "raw1", "object": "chat.completion.chunk", "created": 1, "model": "mimo-v2.5-pro",
                           "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    if usage is not None:
        out["usage"] = usage
    return data(out)


class RawUpstream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[RawRequest] = []

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve until the block ends; yields `http://127.0.0.1:PORT/v1`."""
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._handle(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=True)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        head, body = _read_request(sock)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        record = RawRequest(head, parsed)
        self.requests.append(record)
        try:
            for step in self.script(parsed):
                if step is RESET:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if isinstance(step, Stall):
                    if _wait_for_eof(sock, step.seconds):
                        record.disconnected = True
                        return
                    continue
                sock.sendall(step)  # type: ignore[arg-type]
            record.finished = True
        except OSError:
            record.disconnected = True
        finally:
            record.ended.set()
            sock.close()


def _read_request(sock: socket.socket) -> tuple[bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        part = sock.recv(65536)
        if not part:
            return buf, b""
        buf += part
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return head, body


def _wait_for_eof(sock: socket.socket, seconds: float) -> bool:
    """Sleep up to `seconds`; True as soon as the peer closed the connection."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.05))
        if readable:
            try:
                if not sock.recv(65536):
                    return True
            except OSError:
                return True
    return False
