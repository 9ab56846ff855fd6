"""The frame every Responses event stream shares (pure): `response.created` and
`response.in_progress` first, sequence numbers 0, 1, 2, ... on every event, the response object
as a snapshot of what was said, and one terminal last. `ResponsesStream` and `CompactionStream`
put their items in between."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from . import _response_object as ro


class ResponseEvents:
    """Events are queued by `_emit` and handed out by `_flush`; `_terminate` makes the final
    response object and its terminal event. Subclasses may add items right after the start
    (`_opening`)."""

    __slots__ = ("_id", "_model", "_created_at", "_echo", "_seq", "_out", "_usage", "_started", "_response")

    def __init__(self, request: Mapping[str, Any], *, response_id: str, model: str, created_at: int) -> None:
        self._id = response_id
        self._model = model
        self._created_at = created_at
        self._echo = ro.echo_parameters(request)
        self._seq = 0
        self._out: list[dict[str, Any]] = []
        self._usage: dict | None = None  # MiMo's usage, as it came
        self._started = False  # `response.created` was emitted
        self._response: dict[str, Any] | None = None  # the terminal snapshot, once emitted

    @property
    def done(self) -> bool:
        return self._response is not None

    @property
    def response(self) -> dict[str, Any]:
        return self._response if self._response is not None else self._snapshot("in_progress", [])

    @property
    def usage(self) -> dict | None:
        return self._usage

    def start(self) -> list[dict[str, Any]]:
        """`response.created` then `response.in_progress` (both with an empty output)."""
        if self._started:
            return []
        self._started = True
        self._emit("response.created", response=self._snapshot("in_progress", []))
        self._emit("response.in_progress", response=self._snapshot("in_progress", []))
        self._opening()
        return self._flush()

    def _opening(self) -> None:
        """Items that come before anything MiMo says (none here)."""

    def _emit(self, type_: str, **fields: Any) -> None:
        self._out.append({"type": type_, "sequence_number": self._seq, **fields})
        self._seq += 1

    def _flush(self) -> list[dict[str, Any]]:
        out, self._out = self._out, []
        return out

    def _snapshot(self, status: str, output: list[dict[str, Any]], **terminal: Any) -> dict[str, Any]:
        return ro.snapshot(response_id=self._id, created_at=self._created_at, model=self._model,
                           echo=self._echo, status=status, output=output, **terminal)

    def _terminate(self, type_: str, status: str, output: list[dict[str, Any]], **fields: Any) -> None:
        self._response = self._snapshot(status, output, completed_at=max(int(time.time()), self._created_at),
                                        usage=ro.map_usage(self._usage), **fields)
        self._emit(type_, response=self._response)


def first_choice(choices: Any) -> dict[str, Any] | None:
    """A MiMo chunk's choice index 0 (a missing index counts as 0); other choices are ignored."""
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) in (0, None):
            return choice
    return None
