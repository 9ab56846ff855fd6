"""Stored-turn builders shared by the store tests (importable: tests/store is on sys.path)."""

from __future__ import annotations

from typing import Any

from mimo_asgi.store import StoredResponse, normalise_input


def turn(response_id: str, user_text: str, answer: str, *, previous: str | None = None,
         account: str | None = "acct-1", reasoning: dict[str, Any] | None = None,
         created_at: float = 1_700_000_000.0) -> StoredResponse:
    """A completed turn: the user's text in, optional reasoning item and one message out."""
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        output.append(reasoning)
    output.append({"type": "message", "id": f"msg_out_{response_id}", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": answer, "annotations": [], "logprobs": []}]})
    response = {"id": response_id, "object": "response", "created_at": created_at, "status": "completed",
                "model": "gpt-5.5", "previous_response_id": previous, "output": output}
    return StoredResponse.from_response(response, normalise_input(user_text), account=account)
