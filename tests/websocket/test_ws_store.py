"""Stored responses made over a WebSocket: a chained frame's answer echoes the previous_response_id
the client sent and, stored, continues the stored chain with only that frame's own items (not
the whole conversation again); after a turn that was not stored it starts a chain holding it all."""

import httpx
from websocket.wsclient import completed, output_text

from mimo_asgi.testing import Answer


def test_a_chained_frame_is_stored_as_the_next_link_of_its_chain(gateway, fake, open_ws):
    url, _ = gateway
    fake.queue(Answer(text="one", reasoning=""), Answer(text="two", reasoning=""), Answer(text="three", reasoning=""))
    ws = open_ws(url)
    first = completed(ws.create(model="gpt-5.5", input="first", store=True))
    second = completed(ws.create(model="gpt-5.5", input="second", store=True, previous_response_id=first["id"]))
    assert second["previous_response_id"] == first["id"]  # what the client sent is what it is told
    items = httpx.get(f"{url}/v1/responses/{second['id']}/input_items", timeout=10).json()["data"]
    assert [i["content"][0]["text"] for i in items] == ["second"]  # its own items, not the conversation again
    # over HTTP, the stored chain is the whole conversation
    third = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "third",
                                                     "previous_response_id": second["id"]}, timeout=10).json()
    assert output_text(third) == "three"
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["first", "one", "second", "two", "third"]


def test_after_a_turn_that_was_not_stored_a_stored_frame_holds_the_whole_conversation(gateway, fake, open_ws):
    url, _ = gateway
    fake.queue(Answer(text="one", reasoning=""), Answer(text="two", reasoning=""), Answer(text="three", reasoning=""))
    ws = open_ws(url)
    first = completed(ws.create(model="gpt-5.5", input="first", store=False))
    second = completed(ws.create(model="gpt-5.5", input="second", store=True, previous_response_id=first["id"]))
    assert second["previous_response_id"] == first["id"]
    stored = httpx.get(f"{url}/v1/responses/{second['id']}", timeout=10).json()
    assert stored["previous_response_id"] is None  # first was never stored: the chain starts here
    third = httpx.post(url + "/v1/responses", json={"model": "gpt-5.5", "input": "third",
                                                     "previous_response_id": second["id"]}, timeout=10).json()
    assert output_text(third) == "three"
    assert [m["content"] for m in fake.requests[-1].body["messages"]] == ["first", "one", "second", "two", "third"]
