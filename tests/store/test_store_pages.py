"""input_items_page: OpenAI's list shape, cursors in both orders, and 400s on bad parameters."""

from __future__ import annotations

import pytest

from mimo_asgi.store import StoredResponse, input_items_page
from mimo_asgi.translate.errors import OpenAIError

RECORD = StoredResponse(
    id="resp_p", response={"id": "resp_p", "output": []},
    input_items=[{"type": "message", "id": f"msg_{i}", "role": "user",
                  "content": [{"type": "input_text", "text": str(i)}]} for i in range(5)])


def _ids(page):
    return [item["id"] for item in page["data"]]


def test_default_is_newest_first_with_list_fields():
    page = input_items_page(RECORD)
    assert page["object"] == "list"
    assert _ids(page) == ["msg_4", "msg_3", "msg_2", "msg_1", "msg_0"]
    assert (page["first_id"], page["last_id"], page["has_more"]) == ("msg_4", "msg_0", False)


def test_paging_forward_with_after_in_both_orders():
    first = input_items_page(RECORD, limit=2, order="asc")
    assert _ids(first) == ["msg_0", "msg_1"] and first["has_more"] is True
    second = input_items_page(RECORD, limit="2", order="asc", after=first["last_id"])
    assert _ids(second) == ["msg_2", "msg_3"] and second["has_more"] is True
    third = input_items_page(RECORD, limit=2, order="asc", after=second["last_id"])
    assert _ids(third) == ["msg_4"] and third["has_more"] is False

    desc = input_items_page(RECORD, limit=2, after="msg_3")
    assert _ids(desc) == ["msg_2", "msg_1"] and desc["has_more"] is True


def test_before_ends_the_page_right_before_it():
    page = input_items_page(RECORD, order="asc", before="msg_4", limit=2)
    assert _ids(page) == ["msg_2", "msg_3"] and page["has_more"] is True
    page = input_items_page(RECORD, order="asc", before="msg_2", limit=5)
    assert _ids(page) == ["msg_0", "msg_1"] and page["has_more"] is False
    between = input_items_page(RECORD, order="asc", after="msg_0", before="msg_4", limit=2)
    assert _ids(between) == ["msg_1", "msg_2"] and between["has_more"] is True


def test_empty_page_has_null_ids():
    page = input_items_page(RECORD, order="asc", after="msg_4")
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize("params, param", [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"), ({"limit": True}, "limit"),
    ({"order": "sideways"}, "order"), ({"after": "msg_unknown"}, "after"), ({"before": "msg_unknown"}, "before"),
])
def test_bad_parameters_are_400(params, param):
    with pytest.raises(OpenAIError) as info:
        input_items_page(RECORD, **params)
    assert info.value.status == 400 and info.value.param == param


def test_limit_bounds_accepted():
    assert len(input_items_page(RECORD, limit=1)["data"]) == 1
    assert len(input_items_page(RECORD, limit=100)["data"]) == 5
    assert len(input_items_page(RECORD, limit=None)["data"]) == 5
