"""Benchmark 6: stdlib json vs orjson vs msgspec on the two per-chunk JSON jobs.

- decode: one `chat.completion.chunk` from the recorded stream (a reasoning delta, ~210 bytes)
  to Python objects (msgspec: `msgspec.json.decode`, untyped, like the others);
- encode: one `response.output_text.delta` event dict to compact bytes (stdlib:
  `json.dumps(separators=(",", ":")).encode()`, as compact as the others).
`timeit`, best of 7 repeats of a loop sized to ~20 ms, µs per call; repeats of the three
libraries interleave. (msgspec is a project dependency for one job only: reading a
pass-through body's `model`, see `_decode.model_of`; the per-chunk jobs stay on orjson.)
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import orjson

from ._common import Row
from ._streams import recorded

EVENT = {"type": "response.output_text.delta", "sequence_number": 1234, "item_id": "msg_" + "0" * 48,
         "output_index": 1, "content_index": 0, "delta": "the patch", "logprobs": []}


def _chunk() -> bytes:
    for event in recorded().events:
        if b"reasoning_content" in event:
            return event[len(b"data: "):].strip()
    raise RuntimeError("no reasoning chunk in the recorded stream")


def _codecs() -> dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]]:
    codecs: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes]]] = {
        "json": (json.loads, lambda obj: json.dumps(obj, separators=(",", ":")).encode()),
        "orjson": (orjson.loads, orjson.dumps),
    }
    import msgspec

    encoder = msgspec.json.Encoder()
    codecs["msgspec"] = (msgspec.json.decode, encoder.encode)
    return codecs


def _per_call(fn: Callable[[], Any]) -> tuple[Callable[[], float], int]:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # >= 0.2 s; scale down to ~20 ms per repeat
    number = max(1000, number // 10)
    return (lambda: timer.timeit(number) * 1e6 / number), number


def measure(repeats: int = 7) -> dict[str, dict[str, float]]:
    chunk = _chunk()
    out: dict[str, dict[str, list[float]]] = {}
    runners = {}
    for name, (loads, dumps) in _codecs().items():
        assert loads(chunk) == orjson.loads(chunk) and orjson.loads(dumps(EVENT)) == EVENT
        runners[name] = {"decode": _per_call(lambda loads=loads: loads(chunk))[0],
                         "encode": _per_call(lambda dumps=dumps: dumps(EVENT))[0]}
        out[name] = {"decode": [], "encode": []}
    for _ in range(repeats):
        for name, jobs in runners.items():
            for job, runner in jobs.items():
                out[name][job].append(runner())
    return {name: {job: min(values) for job, values in jobs.items()} for name, jobs in out.items()}


def run(quick: bool) -> list[Row]:
    result = measure(5 if quick else 9)
    size = len(_chunk())
    rows = []
    for job, label in (("decode", f"6a decode a {size}-byte chunk"), ("encode", "6b encode a delta event")):
        std, ours = result["json"][job], result["orjson"][job]
        extra = f", msgspec {result['msgspec'][job]:.2f} µs"
        rows.append(Row(label, f"{ours:.2f} µs orjson{extra}", f"{std:.2f} µs json", std / ours,
                        ">= 2x faster than json", std / ours >= 2))
    rows[0].notes.append("6: the 2x target is this suite's choice (the brief asks only to justify orjson); "
                         "ratio = json time / orjson time.")
    return rows
