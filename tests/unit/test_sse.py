"""The SSE decoder against the WHATWG rules, at every chunk boundary, and the encoders."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mimo_asgi._sse import DONE, KEEPALIVE, SSEDecoder, SSEError, SSEEvent, encode_data, encode_event


def decode(*chunks: bytes, close: bool = True) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.close() if close else events


def bytewise(stream: bytes) -> list[SSEEvent]:
    return decode(*(stream[i : i + 1] for i in range(len(stream))))


def test_one_event():
    assert decode(b"data: {\"a\":1}\n\n", close=False) == [SSEEvent('{"a":1}')]


def test_data_with_or_without_a_space():
    assert decode(b"data:x\n\ndata: x\n\ndata:  x\n\n") == [SSEEvent("x"), SSEEvent("x"), SSEEvent(" x")]


def test_multiline_data_joined_with_newline():
    assert decode(b"data: a\ndata:\ndata: b\n\n") == [SSEEvent("a\n\nb")]


def test_event_field_sets_type_and_resets_after_dispatch():
    assert decode(b"event: error\ndata: x\n\ndata: y\n\n") == [SSEEvent("x", "error"), SSEEvent("y")]


def test_empty_event_field_means_message():
    assert decode(b"event:\ndata: x\n\n") == [SSEEvent("x")]


def test_event_without_data_is_not_dispatched_and_its_type_does_not_leak():
    assert decode(b"event: ping\n\ndata: x\n\n") == [SSEEvent("x")]


def test_empty_data_line_dispatches_empty_string():
    assert decode(b"data:\n\ndata\n\n") == [SSEEvent(""), SSEEvent("")]


def test_comments_and_other_fields_ignored():
    stream = b": keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata : not data\ndata: x\n: mid\n\n"
    assert decode(stream) == [SSEEvent("x")]


def test_comment_only_blocks_and_extra_blank_lines_dispatch_nothing():
    assert decode(KEEPALIVE + b"\n\n" + KEEPALIVE) == []


def test_crlf_lf_and_lone_cr_mixed():
    stream = b"data: a\r\n\r\ndata: b\r\rdata: c\n\ndata: d\r\ndata: e\r\n"
    assert decode(stream) == [SSEEvent("a"), SSEEvent("b"), SSEEvent("c"), SSEEvent("d\ne")]


def test_crlf_split_across_feeds_is_one_line_end():
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n", close=False) == [SSEEvent("a\nb")]


def test_lone_cr_at_chunk_end_then_data():
    assert decode(b"data: a\r", b"\r", b"data: b\r\r", close=False) == [SSEEvent("a"), SSEEvent("b")]


def test_cr_at_chunk_end_dispatches_without_waiting():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [SSEEvent("a")]
    assert decoder.feed(b"\n") == []  # completes the CRLF, not a third line end
    assert decoder.feed(b"data: b\n\n") == [SSEEvent("b")]


def test_bom_stripped_once():
    assert decode(b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n") == [
        SSEEvent("a"), SSEEvent("\ufeffc")]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_bom_split_across_chunks(cut):
    stream = b"\xef\xbb\xbfdata: a\n\n"
    assert decode(stream[:cut], stream[cut:]) == [SSEEvent("a")]
    assert bytewise(stream) == [SSEEvent("a")]


def test_bom_not_at_stream_start_is_not_stripped():
    assert decode(b"\n\xef\xbb\xbfdata: a\n\n") == []  # field name is "\ufeffdata": unknown


def test_invalid_utf8_replaced_and_split_characters_joined():
    assert decode(b"data: \xff\n\n") == [SSEEvent("\ufffd")]
    euro = "data: \u20ac\n\n".encode()
    assert bytewise(euro) == [SSEEvent("\u20ac")]


def test_close_dispatches_pending_event_without_blank_line():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.close() == [SSEEvent("a")]
    assert decoder.close() == []


def test_close_dispatches_an_unterminated_last_line():
    assert decode(b"data: a\ndata: b") == [SSEEvent("a\nb")]
    assert decode(b"event: error\ndata:{\"error\":{}}") == [SSEEvent('{"error":{}}', "error")]


def test_close_without_data_dispatches_nothing():
    assert decode(b"event: x\n") == []
    assert decode(b": comment") == []
    assert decode(b"data: a\r") == [SSEEvent("a")]


def test_line_over_cap_raises():
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(SSEError):
        for _ in range(10):
            decoder.feed(b"x" * 10)
    with pytest.raises(SSEError):
        SSEDecoder(max_event_bytes=64).feed(b"data: " + b"x" * 100 + b"\n")


def test_event_over_cap_raises_even_in_short_lines():
    decoder = SSEDecoder(max_event_bytes=64)
    with pytest.raises(SSEError):
        decoder.feed(b"data: 0123456789\n" * 10)


def test_long_line_in_pieces_under_the_cap():
    decoder = SSEDecoder(max_event_bytes=1 << 20)
    payload = b"y" * 300_000
    events = []
    events += decoder.feed(b"data: ")
    for i in range(0, len(payload), 1000):
        events += decoder.feed(payload[i : i + 1000])
    events += decoder.feed(b"\n\n")
    assert events == [SSEEvent(payload.decode())]


def test_done_is_plain_data():
    assert decode(DONE) == [SSEEvent("[DONE]")]


def test_encode_event_round_trip():
    event = {"type": "response.output_text.delta", "delta": "a\nb\r\n\u2028", "sequence_number": 3}
    raw = encode_event(event)
    assert raw.startswith(b"event: response.output_text.delta\ndata: {")
    assert raw.endswith(b"}\n\n") and raw.count(b"\n") == 3
    (decoded,) = decode(raw, close=False)
    assert decoded.event == "response.output_text.delta"
    assert orjson.loads(decoded.data) == event


def test_encode_data_round_trip():
    obj = {"choices": [{"delta": {"content": "x\ny"}}], "model": "m"}
    raw = encode_data(obj)
    assert raw == b"data: " + orjson.dumps(obj) + b"\n\n"
    assert [orjson.loads(e.data) for e in decode(raw + DONE)[:1]] == [obj]


# -- properties ------------------------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12)
_ENDINGS = ("\n", "\r\n", "\r")


@st.composite
def _streams(draw):
    """(encoded stream, expected events): random events, line ends, comments and ignored fields."""
    events = draw(st.lists(st.tuples(st.one_of(st.none(), _TEXT), st.lists(_TEXT, min_size=1, max_size=4)),
                           max_size=6))
    lines: list[str] = []
    expected = []
    for name, data in events:
        if name is not None:
            lines.append("event: " + name)
        for value in data:
            noise = draw(st.sampled_from([None, ": c", "id: 1", "retry: 5", ":", "foo"]))
            if noise:
                lines.append(noise)
            spaced = value[:1] == " " or draw(st.booleans())  # "data:" then " x" would lose the space
            lines.append(("data: " if spaced else "data:") + value)
        lines.append("")
        expected.append(SSEEvent("\n".join(data), name or "message"))
    out: list[str] = []
    previous = ""
    for line in lines:
        endings = _ENDINGS if line or previous != "\r" else ("\r", "\r\n")  # CR + LF would merge
        previous = draw(st.sampled_from(endings))
        out.append(line + previous)
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + "".join(out)).encode(), expected


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]


@settings(max_examples=300, deadline=None)
@given(_streams(), st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_gives_the_same_events(case, cuts):
    stream, expected = case
    assert decode(stream) == expected
    assert decode(*_split(stream, cuts)) == expected


@settings(max_examples=100, deadline=None)
@given(_streams())
def test_bytewise_feeding_gives_the_same_events(case):
    stream, expected = case
    assert bytewise(stream) == expected


@settings(max_examples=200, deadline=None)
@given(_streams(), st.lists(st.integers(min_value=0), max_size=8))
def test_missing_final_blank_line_is_recovered_at_close(case, cuts):
    stream, expected = case
    trimmed = stream
    for ending in (b"\r\n", b"\n", b"\r"):  # drop only the dispatching blank line
        if trimmed.endswith(ending):
            trimmed = trimmed[: -len(ending)]
            break
    assert decode(*_split(trimmed, cuts)) == expected


@given(st.lists(st.dictionaries(st.text(max_size=5), st.one_of(st.text(), st.integers(-(2**63), 2**63 - 1), st.none()), max_size=4),
                max_size=5))
def test_encode_data_round_trips_any_objects(objs):
    stream = b"".join(encode_data(o) for o in objs)
    assert [orjson.loads(e.data) for e in decode(stream)] == objs


@settings(max_examples=300, deadline=None)
@given(_streams(), st.lists(st.integers(min_value=0), max_size=20), st.sampled_from(["a", "b", ""]))
def test_whole_split_and_fed_rest_give_the_same_events(case, cuts, taken):
    """`whole` answers a read that is one event, and `split` cuts whole events off a read; a
    consumer takes some (here: plain `data: <x>` events whose data starts with `taken`) and
    gives the first it refuses, with everything after it, back to `feed`; every event comes out
    once and in order, however the stream is cut (this is what the relay's pump does with
    `forward`)."""
    stream, expected = case

    def handle(raw: bytes) -> bytes | None:
        if raw.startswith(b"data: " + taken.encode()) and raw.count(b"\n") == 2 and b"\r" not in raw:
            return b"<" + raw[6:-2] + b">"
        return None

    decoder = SSEDecoder()
    got: list[str] = []
    for read in _split(stream, cuts):
        answered = decoder.whole(read, handle)
        if answered is not None:
            got.append(answered[1:-1].decode("utf-8", "replace"))
            continue
        data, frames = decoder.split(read)
        used = 0
        for frame in frames:
            out = handle(frame)
            if out is None:
                break
            used += len(frame)
            got.append(out[1:-1].decode("utf-8", "replace"))
        got += [e.data for e in decoder.feed(data[used:])]
    got += [e.data for e in decoder.close()]
    assert got == [e.data for e in expected]


def test_split_cuts_mimos_usual_reads_without_holding_anything():
    decoder = SSEDecoder()
    data, frames = decoder.split(b"data: {}\n\n")
    assert (data, list(frames)) == (b"data: {}\n\n", [b"data: {}\n\n"])
    data, frames = decoder.split(b"data: 1\n\ndata: 2\n\ndata: 3")
    assert list(frames) == [b"data: 1\n\n", b"data: 2\n\n"]
    assert decoder.feed(data[18:]) == []  # the start of a line ("data: 3"): held
    data, frames = decoder.split(b"\n\n")
    assert (data, list(frames)) == (b"data: 3\n\n", [b"data: 3\n\n"])  # held bytes come first
    data, frames = decoder.split(b"data: x\r\n\r\n")
    assert (data, list(frames)) == (b"data: x\r\n\r\n", [])  # CR: the decoder's job
    assert [e.data for e in decoder.feed(data)] == ["x"]
    assert decoder.feed(b"event: e\ndata: y\n") == []
    data, frames = decoder.split(b"\n")
    assert (data, list(frames)) == (b"\n", [])  # inside an event: nothing is cut


def test_split_cuts_no_further_than_it_is_asked():
    """A consumer that stops at the first event it cannot take leaves the rest uncut: a read of
    many events whose first is not plain costs no scan of the others before `feed`'s own."""
    cut: list[bytes] = []
    data, frames = SSEDecoder().split(b"data: 1\n\ndata: 2\n\ndata: 3\n\n")
    for frame in frames:
        cut.append(frame)
        break
    assert cut == [b"data: 1\n\n"]
    assert next(frames) == b"data: 2\n\n"  # cut only now


def test_whole_answers_one_event_and_holds_the_start_of_the_next():
    decoder = SSEDecoder()
    seen: list[bytes] = []

    def answer(raw: bytes) -> bytes | None:
        seen.append(raw)
        return None if b"no" in raw else raw.upper()

    assert decoder.whole(b"data: a\n\n", answer) == b"DATA: A\n\n"
    assert decoder.whole(b"data: b\n\ndata: c", answer) == b"DATA: B\n\n"  # "data: c" held
    assert decoder.whole(b"\n\n", answer) == b"DATA: C\n\n"  # held bytes come first
    assert decoder.whole(b"data: no\n\ndata: d", answer) is None  # refused: nothing held
    assert [e.data for e in decoder.feed(b"data: no\n\ndata: d")] == ["no"]
    assert decoder.whole(b"\n\n", answer) == b"DATA: D\n\n"
    seen.clear()
    for read in (b"data: 1\n\ndata: 2\n\n", b"data: x\r\n\r\n", b"data: y\n", b"data: z"):
        assert decoder.whole(read, answer) is None  # two events, a CR, no blank line, no line end
    assert seen == []  # not asked: none of them is one whole event
    assert [e.data for e in decoder.feed(b"event: e\ndata: y\n")] == []
    assert decoder.whole(b"\n", answer) is None  # inside an event
    assert [(e.event, e.data) for e in decoder.feed(b"\n")] == [("e", "y")]
