"""MiMo's error answers as the client sees them, with MiMo's own status kept for the pool."""

from __future__ import annotations

import json

import pytest

from mimo_asgi.testing import error_body
from mimo_asgi.translate.errors import from_stream_error, from_upstream, store_unavailable

KEY = "sk-test-0123456789abcdef"


def _answer(status: int, detail: str | None = None):
    return from_upstream(status, json.dumps(error_body(status, detail)).encode(), secrets=(KEY,))


@pytest.mark.parametrize("status,client_status,code", [
    (400, 400, None), (401, 502, "upstream_account_rejected"), (402, 429, "insufficient_quota"),
    (403, 502, "upstream_account_rejected"), (404, 404, None), (421, 400, "content_filter"),
    (429, 429, "rate_limit_exceeded"), (500, 502, "upstream_error"), (503, 502, "upstream_error"),
])
def test_each_status_as_the_client_sees_it(status, client_status, code):
    err = _answer(status)
    assert (err.status, err.code, err.upstream_status) == (client_status, code, status)


def test_a_rejected_key_names_the_gateways_account_never_the_key():
    err = _answer(401, f"Invalid key {KEY}")
    assert err.type == "upstream_error" and "gateway" in err.message and "HTTP 401" in err.message
    assert KEY not in err.message and "[redacted]" in err.message
    assert err.body()["error"]["code"] == "upstream_account_rejected"


def test_quota_and_rate_limits_keep_retry_after():
    err = from_upstream(402, json.dumps(error_body(402)).encode(), {"retry-after": "12"})
    assert (err.status, err.type, err.headers) == (429, "insufficient_quota", {"retry-after": "12"})
    assert "Insufficient account funds" in err.message


def test_content_filter_names_the_filter():
    err = _answer(421, "sensitive words")
    assert err.type == "invalid_request_error" and "content filter" in err.message and "sensitive words" in err.message


@pytest.mark.parametrize("code,client_status,client_code", [
    ("421", 400, "content_filter"), ("401", 502, "upstream_account_rejected"), ("429", 429, "rate_limit_exceeded"),
    ("500", 502, "upstream_error"),
])
def test_in_band_errors_map_as_their_status(code, client_status, client_code):
    err = from_stream_error({"error": {"code": code, "message": "Content Filter", "param": "x", "type": ""}})
    assert (err.status, err.code, err.upstream_status) == (client_status, client_code, int(code))


def test_store_unavailable_is_one_error():
    from mimo_asgi.pool import _shared
    from mimo_asgi.store import store_unavailable as from_store

    err = store_unavailable()
    assert (err.status, err.code, err.headers) == (503, "store_unavailable", {"retry-after": "1"})
    assert from_store is store_unavailable and _shared.store_unavailable is store_unavailable
