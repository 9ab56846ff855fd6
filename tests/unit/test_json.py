"""Bytes that are kept take the memory of their length."""

from __future__ import annotations

import tracemalloc

from mimo_asgi import _json


def _allocated(make) -> int:
    """Bytes still allocated by what `make()` returned (its result kept)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        kept = make()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    assert kept
    return sum(s.size_diff for s in after.compare_to(before, "filename"))


def test_kept_json_is_the_size_of_its_bytes():
    history = {"messages": [{"role": "user", "content": "é" * 3000 + str(n)} for n in range(20)]}
    kept = _json.dumps_kept(history)
    assert kept == _json.dumps(history)
    assert _allocated(lambda: _json.dumps_kept(history)) < len(kept) + 1024
