"""`item_reference` input items are resolved from the stored conversation: a referenced message
reaches MiMo, a referenced function_call keeps its output a tool result, an unknown id is a 404."""

import openai
import pytest

from mimo_asgi.testing import Answer, ToolCall


def client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="client-own-key", max_retries=0, timeout=20)


TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]


def test_references_to_stored_items_reach_mimo_as_those_items(gateway, fake):
    """A client that keeps only ids: its stored turns' items, referenced, are the items themselves
    (the call keeps its output a tool result, not an orphan's user text)."""
    url, _ = gateway
    sdk = client(url)
    fake.queue(Answer(reasoning="", tool_calls=[ToolCall("lookup", {"q": "tok"})]))
    first = sdk.responses.create(model="gpt-5.5", input=[{"role": "user", "content": "Look up tok."}],
                                 store=True, tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    fake.queue(Answer(reasoning="", text="It is 42."))
    second = sdk.responses.create(model="gpt-5.5", store=True, tools=TOOLS, input=[
        {"role": "user", "content": "Look up tok."}, {"type": "item_reference", "id": call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "42"}])
    assert second.output_text == "It is 42."
    messages = fake.requests[-1].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "42"}

    [said] = [item for item in second.output if item.type == "message"]
    fake.queue(Answer(reasoning="", text="Yes."))
    sdk.responses.create(model="gpt-5.5", previous_response_id=first.id,  # a chain that does not hold it
                         input=[{"type": "item_reference", "id": said.id}, {"role": "user", "content": "Sure?"}])
    messages = fake.requests[-1].body["messages"]
    assert [m.get("content") for m in messages if m["role"] == "assistant"] == ["It is 42."]
    assert messages[-1] == {"role": "user", "content": "Sure?"}


def test_a_reference_to_an_unknown_item_is_a_404_naming_it(gateway, fake):
    url, _ = gateway
    with pytest.raises(openai.NotFoundError) as err:
        client(url).responses.create(model="gpt-5.5", input=[{"type": "item_reference", "id": "msg_nope"}])
    assert err.value.body["code"] == "item_not_found" and err.value.body["param"] == "input[0]"
    assert not fake.requests
