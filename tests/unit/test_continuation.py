"""A conversation translated turn by turn from the last turn's continuation (a WebSocket
connection's way) gives exactly what a translation from scratch gives, and its JSON is that body."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.test_properties import HOST_MODELS, SEALER, _item, _request, _tool

from mimo_asgi.translate._items import translate_items
from mimo_asgi.translate.errors import OpenAIError
from mimo_asgi.translate.responses_request import chat_request_from_responses


def translate(body: dict[str, Any], model: str, since: Any = None) -> Any:
    try:
        return chat_request_from_responses(body, upstream_model=model, sealer=SEALER, since=since, continues=True)
    except OpenAIError as err:
        return err


def same(continued: Any, scratch: Any) -> None:
    if isinstance(scratch, OpenAIError):
        assert isinstance(continued, OpenAIError) and (continued.param, continued.message) == (scratch.param, scratch.message)
        return
    assert not isinstance(continued, OpenAIError), continued
    assert continued.body == scratch.body and continued.tool_map == scratch.tool_map
    assert orjson.loads(continued.encoded) == orjson.loads(orjson.dumps(continued.body))  # the bytes sent are the body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_request, st.lists(st.tuples(st.lists(_item, max_size=4), st.booleans(), st.lists(_tool, max_size=2)),
                          min_size=1, max_size=5), st.sampled_from(sorted(HOST_MODELS)))
def test_each_turn_translated_from_the_last_ones_continuation_is_the_translation_from_scratch(
        body: dict[str, Any], turns: list[Any], model: str) -> None:
    """Each turn appends items to the same list objects (as a connection rebuilds a chained frame);
    sometimes it also changes the tools, which the continuation must notice."""
    body = {**body, "input": body["input"] if isinstance(body["input"], list) else []}
    last = translate(body, model)
    for added, retool, tools in turns:
        body = {**body, "input": [*body["input"], *added]}
        if retool:
            body["tools"] = tools
        since = None if isinstance(last, OpenAIError) else last.continuation
        snapshot = copy.deepcopy(body)
        last = translate(body, model, since)
        assert body == snapshot  # nothing of the client's is modified
        same(last, translate(copy.deepcopy(body), model))


def test_a_long_conversation_is_translated_a_turn_at_a_time():
    """What makes a long connection cheap: after the first request, only the new items are parsed."""
    from mimo_asgi.translate import _items

    parsed: list[Any] = []
    real = _items._parse

    def counting(item: Any, param: str, ctx: Any) -> Any:
        parsed.append(item)
        return real(item, param, ctx)

    body = {"model": "gpt-5.5", "input": [{"role": "user", "content": "start"}]}
    for n in range(50):
        body["input"] += [{"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": "{}"},
                          {"type": "function_call_output", "call_id": f"c{n}", "output": "ok"}]
    first = chat_request_from_responses(body, upstream_model="mimo-v2.5-pro", sealer=SEALER, continues=True)
    _items._parse = counting
    try:
        grown = {**body, "input": [*body["input"], {"role": "user", "content": "next"}]}
        again = chat_request_from_responses(grown, upstream_model="mimo-v2.5-pro", sealer=SEALER,
                                            since=first.continuation)
    finally:
        _items._parse = real
    assert parsed == [grown["input"][-1]]
    assert again.body["messages"][-1] == {"role": "user", "content": "next"}
    assert len(again.body["messages"]) == len(first.body["messages"]) + 1


def test_an_output_left_before_the_checkpoint_is_placed_when_its_call_comes_later():
    """A checkpoint that left an output unanswered (its call not yet seen) cannot be continued when
    a later item makes that call: the output must then follow its call, so the whole conversation
    is translated again."""
    from mimo_asgi.translate._content import Ctx
    from mimo_asgi.translate._items import CannotContinue
    from mimo_asgi.translate._tooldefs import ToolNames

    items = [{"role": "user", "content": "u"}, {"type": "function_call_output", "call_id": "late", "output": "out"},
             {"role": "user", "content": "v"}]
    _, checkpoint = translate_items(items, Ctx("mimo-v2.5-pro", SEALER, ToolNames(), []), thinking=False)
    assert checkpoint is not None and checkpoint.orphans == {"late"}
    grown = [*items, {"type": "function_call", "call_id": "late", "name": "f", "arguments": "{}"}]
    with pytest.raises(CannotContinue):
        translate_items(grown, Ctx("mimo-v2.5-pro", SEALER, ToolNames(), []), thinking=False, since=checkpoint)
    first = chat_request_from_responses({"model": "gpt-5.5", "input": items}, upstream_model="mimo-v2.5-pro",
                                        sealer=SEALER, continues=True)
    again = chat_request_from_responses({"model": "gpt-5.5", "input": grown}, upstream_model="mimo-v2.5-pro",
                                        sealer=SEALER, since=first.continuation)
    assert {"role": "tool", "tool_call_id": "late", "content": "out"} in again.body["messages"]


def test_a_request_no_other_will_continue_keeps_nothing():
    """An HTTP request's translation is not continued: it keeps no continuation (the JSON of a long
    history held for the whole stream) and its bytes are still the body."""
    body = {"model": "gpt-5.5", "instructions": "be brief", "tool_choice": "required",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "input": [{"role": "user", "content": "u"},
                      {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "c", "output": "ok"}]}
    alone = chat_request_from_responses(body, upstream_model="mimo-v2.5-pro", sealer=SEALER)
    kept = chat_request_from_responses(body, upstream_model="mimo-v2.5-pro", sealer=SEALER, continues=True)
    assert alone.continuation is None and kept.continuation is not None and kept.continuation.encoded
    assert alone.body == kept.body and orjson.loads(alone.encoded) == orjson.loads(kept.encoded) == kept.body
    assert list(orjson.loads(alone.encoded))[-1] == "messages"  # the messages last, as with a continuation
