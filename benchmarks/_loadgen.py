"""A small keep-alive HTTP/1.1 load generator (used when `wrk` is not installed).

`python -m benchmarks._loadgen URL SECONDS CONNECTIONS [BODY_FILE]` prints requests/s as JSON.
Each connection sends one request, reads the whole response (Content-Length framing), repeats.
Run it in its own process: it must not share a CPU-bound loop with the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def _request(url: str, body: bytes | None) -> bytes:
    parts = urlsplit(url)
    head = f"{'POST' if body is not None else 'GET'} {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    if body is None:
        return (head + "\r\n").encode()
    return (head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _worker(host: str, port: int, request: bytes, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            counts[0] += 1
    finally:
        writer.close()


async def run(url: str, seconds: float, connections: int, body: bytes | None) -> tuple[int, float]:
    """(responses completed, their rate per second)."""
    parts = urlsplit(url)
    request = _request(url, body)
    counts = [0]
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(_worker(parts.hostname or "127.0.0.1", parts.port or 80, request, deadline, counts)
                           for _ in range(connections)))
    return counts[0], counts[0] / (time.monotonic() - start)


def main() -> None:
    url, seconds, connections = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    body = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else None
    requests, rps = asyncio.run(run(url, seconds, connections, body))
    print(json.dumps({"requests": requests, "rps": rps}))


if __name__ == "__main__":
    main()
