"""The sealer: round trips, foreign and tampered blobs, key rotation, and purposes that never
open each other's blobs."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mimo_asgi._seal import COMPACTION, PREFIX, REASONING, ReasoningSealer

SEALER = ReasoningSealer("unit-test-key")
# Sealed by the sealer as it was before purposes existed (key "old-key", binding "xiaomimimo").
LEGACY_BLOB = "mimo1:wMEu_rZfwGjmQQnVEn8mEJW2MZw3BR45H98Q4C18-Ckk822EIU72e7Dk7vwEZ7KhPVNMoRPcJyiAgw=="


def test_round_trip_and_prefix():
    blob = SEALER.seal("thinking about it")
    assert blob.startswith(PREFIX) and "thinking" not in blob
    assert SEALER.unseal(blob) == "thinking about it"


def test_each_seal_is_fresh():
    assert SEALER.seal("same") != SEALER.seal("same")


def test_blobs_sealed_before_purposes_still_open_as_reasoning():
    assert ReasoningSealer("old-key").unseal(LEGACY_BLOB) == "sealed before purposes existed"
    assert ReasoningSealer("old-key").for_purpose(COMPACTION).unseal(LEGACY_BLOB) is None


def test_purposes_never_open_each_others_blobs():
    compaction = SEALER.for_purpose(COMPACTION)
    summary, reasoning = compaction.seal("the summary"), SEALER.seal("the reasoning")
    assert compaction.unseal(summary) == "the summary"
    assert SEALER.unseal(summary) is None
    assert compaction.unseal(reasoning) is None
    assert SEALER.unseal(reasoning) == "the reasoning"


def test_a_purpose_is_the_same_whichever_way_the_sealer_is_made():
    direct = ReasoningSealer("unit-test-key", purpose=COMPACTION)
    derived = SEALER.for_purpose(COMPACTION)
    assert direct.unseal(derived.seal("x")) == "x" and derived.unseal(direct.seal("y")) == "y"
    assert derived.for_purpose(REASONING).unseal(SEALER.seal("z")) == "z"
    assert SEALER.for_purpose(REASONING) is SEALER
    assert derived.purpose == COMPACTION and SEALER.purpose == REASONING


@pytest.mark.parametrize("purpose", ["", "Compaction", "a b", "a|b", "x v1|y", "1st"])
def test_a_purpose_is_one_lowercase_word(purpose):
    with pytest.raises(ValueError):
        SEALER.for_purpose(purpose)
    with pytest.raises(ValueError):
        ReasoningSealer("k", purpose=purpose)


def test_another_binding_does_not_open():
    other = ReasoningSealer("unit-test-key", binding="elsewhere")
    assert other.unseal(SEALER.seal("x")) is None
    assert other.for_purpose(COMPACTION).unseal(SEALER.for_purpose(COMPACTION).seal("x")) is None


@pytest.mark.parametrize("purpose", [REASONING, COMPACTION])
def test_rotation_seals_with_the_first_key_and_opens_with_any(purpose):
    old = ReasoningSealer("old", purpose=purpose)
    rotated = ReasoningSealer(["new", "old"]).for_purpose(purpose)
    retired = ReasoningSealer(["new"]).for_purpose(purpose)
    blob = old.seal("before the rotation")
    assert rotated.unseal(blob) == "before the rotation"
    assert retired.unseal(blob) is None
    assert ReasoningSealer("new", purpose=purpose).unseal(rotated.seal("after")) == "after"
    assert old.unseal(rotated.seal("after")) is None


@pytest.mark.parametrize("blob", [None, 42, "", "gAAAAABforeign-openai-blob", "mimo1:", "mimo1:%%%", "mimo1:AAAA",
                                  PREFIX + base64.urlsafe_b64encode(b"\0" * 40).decode()])
def test_foreign_or_malformed_blobs_open_to_none(blob):
    assert SEALER.unseal(blob) is None
    assert SEALER.for_purpose(COMPACTION).unseal(blob) is None


@settings(max_examples=200, deadline=None)
@given(st.text(), st.data())
def test_any_change_to_a_blob_makes_it_not_open(text, data):
    compaction = SEALER.for_purpose(COMPACTION)
    blob = compaction.seal(text)
    assert compaction.unseal(blob) == text
    raw = bytearray(base64.urlsafe_b64decode(blob[len(PREFIX):]))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] ^= data.draw(st.integers(1, 255))
    assert compaction.unseal(PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()) is None
