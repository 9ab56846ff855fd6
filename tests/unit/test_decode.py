"""Content-Encoding request bodies: every coding, stacks, corrupt data, bombs, limits (pure)."""

import gzip
import struct
import tracemalloc
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from mimo_asgi._decode import codings, content_encoding, decode_body
from mimo_asgi.translate.errors import OpenAIError

BODY = b'{"model": "gpt-5.5", "input": "h\xc3\xa9llo", "stream": true}' + b" " * 200
MiB = 1 << 20


def zstd_streamed(data, **params):
    """A zstd frame written as Codex writes it: streamed, so no content size in the header."""
    compressor = zstandard.ZstdCompressor(**params).compressobj()
    return compressor.compress(data) + compressor.flush()


def raw_deflate(data):
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS = {
    "zstd": zstd_streamed,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "identity": lambda data: data,
}


def encode(data, header):
    for name in (n.strip().lower() for n in header.split(",")):
        data = ENCODERS[name](data)
    return data


def peak_memory(fn):
    """fn()'s result and the peak of Python-traced memory allocated while it ran."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def decode_error(raw, header, max_size=MiB):
    with pytest.raises(OpenAIError) as info:
        decode_body(raw, header, max_size=max_size)
    err = info.value
    assert set(err.body()["error"]) == {"message", "type", "param", "code"}
    assert err.body()["error"]["type"] == "invalid_request_error"
    return err


def zeros_bomb(wbits, mib):
    """`mib` MiB of zeros as one deflate stream (gzip / zlib / raw by `wbits`), with a correct
    trailer, built without compressing all of it: after a full flush every 1 MiB segment is the same."""
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()
    trailer_size = {31: 8, 15: 4, -15: 0}[wbits]
    final_block = final[:len(final) - trailer_size]
    if wbits == 31:
        crc = 0
        for _ in range(mib):
            crc = zlib.crc32(zeros, crc)
        trailer = struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)
    elif wbits == 15:
        adler = 1
        for _ in range(mib):
            adler = zlib.adler32(zeros, adler)
        trailer = struct.pack(">I", adler)
    else:
        trailer = b""
    return head + segment * (mib - 1) + final_block + trailer


@pytest.fixture(scope="module")
def gzip_bomb():
    return zeros_bomb(31, 1024)  # 1 GiB of zeros in about 1 MiB


@pytest.fixture(scope="module")
def zstd_bomb():
    zeros = bytes(MiB)
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join([compressor.compress(zeros) for _ in range(1024)] + [compressor.flush()])  # 1 GiB, 32 KiB


# -- each coding ------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["zstd", "gzip", "x-gzip", "deflate", "ZSTD", " Gzip ", "X-GZip"])
def test_each_coding_decodes(header):
    assert decode_body(encode(BODY, header), header, max_size=MiB) == BODY


def test_zstd_frame_without_content_size_as_codex_streams_it():
    frame = zstd_streamed(BODY)
    assert zstandard.get_frame_parameters(frame).content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decode_body(frame, "zstd", max_size=MiB) == BODY


def test_zstd_frame_with_content_size_and_checksum():
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(BODY)
    assert zstandard.get_frame_parameters(frame).content_size == len(BODY)
    assert decode_body(frame, "zstd", max_size=MiB) == BODY


def test_zstd_several_frames_and_a_skippable_frame():
    skippable = struct.pack("<II", 0x184D2A53, 5) + b"hello"
    data = zstd_streamed(BODY[:20]) + skippable + zstandard.ZstdCompressor().compress(BODY[20:])
    assert decode_body(data, "zstd", max_size=MiB) == BODY


def test_raw_deflate_is_accepted_as_deflate():
    assert decode_body(raw_deflate(BODY), "deflate", max_size=MiB) == BODY


def test_gzip_with_several_members_and_zero_padding():
    data = gzip.compress(BODY[:30]) + gzip.compress(BODY[30:]) + b"\0" * 16
    assert decode_body(data, "gzip", max_size=MiB) == BODY


# -- stacks -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["gzip, zstd", "zstd, gzip", "deflate,zstd", "zstd ,  deflate",
                                    "gzip, identity, zstd"])
def test_stacked_codings_are_undone_last_first(header):
    data = encode(BODY, header)
    assert decode_body(data, header, max_size=MiB) == BODY


def test_stack_in_the_wrong_order_is_corrupt():
    data = zstd_streamed(gzip.compress(BODY))  # gzip first, then zstd: "gzip, zstd"
    err = decode_error(data, "zstd, gzip")
    assert err.status == 400 and err.code == "invalid_body_encoding" and "gzip" in err.message


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096),
       st.lists(st.sampled_from(["zstd", "gzip", "x-gzip", "deflate", "identity"]), max_size=3))
def test_any_stack_round_trips(data, names):
    header = ", ".join(names)
    assert decode_body(encode(data, header) if names else data, header, max_size=4096) == data


# -- identity, none, empty ----------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "identity", " Identity ", ","])
def test_no_coding_returns_the_same_bytes(header):
    assert decode_body(BODY, header, max_size=MiB) is BODY


def test_identity_body_over_the_cap_is_413():
    err = decode_error(BODY, None, max_size=10)
    assert err.status == 413 and err.code == "request_too_large"


@pytest.mark.parametrize("header", [None, "zstd", "gzip", "deflate", "gzip, zstd"])
def test_empty_body_stays_empty(header):
    assert decode_body(b"", header, max_size=MiB) == b""


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("header,data", [
    ("zstd", b"definitely not zstd"),
    ("zstd", zstd_streamed(BODY)[:-3]),  # truncated: the reader alone would stop silently
    ("zstd", zstd_streamed(BODY) + b"junk"),
    ("zstd", gzip.compress(BODY)),
    ("gzip", gzip.compress(BODY)[:-4]),
    ("gzip", gzip.compress(BODY) + b"junk"),
    ("gzip", b"\x1f\x8b" + b"x" * 40),
    ("gzip", zstd_streamed(BODY)),
    ("deflate", zlib.compress(BODY)[:-6]),
    ("deflate", zlib.compress(BODY) + b"junk"),
    ("deflate", b"\xff" * 40),
    ("gzip, zstd", zstd_streamed(b"plain, not gzip")),
], ids=["zstd-garbage", "zstd-truncated", "zstd-trailing", "zstd-given-gzip", "gzip-truncated", "gzip-trailing",
        "gzip-bad-deflate", "gzip-given-zstd", "deflate-truncated", "deflate-trailing", "deflate-garbage",
        "stack-inner-not-gzip"])
def test_corrupt_data_is_400(header, data):
    err = decode_error(data, header)
    assert err.status == 400 and err.code == "invalid_body_encoding"
    assert "not valid" in err.message and "Content-Encoding" in err.message


def test_zstd_checksum_mismatch_is_400():
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(BODY))
    frame[-1] ^= 0xFF
    assert decode_error(bytes(frame), "zstd").code == "invalid_body_encoding"


@pytest.mark.parametrize("header", ["br", "compress", "gzip, br", "zstd;q=1", "x" * 300])
def test_unknown_coding_is_415_before_decoding(header):
    err = decode_error(b"whatever", header)
    assert err.status == 415 and err.code == "unsupported_content_encoding"
    assert err.headers == {"accept-encoding": "zstd, gzip, deflate"}
    assert len(err.message) < 200


# -- the cap ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["zstd", "gzip", "deflate"])
def test_decoded_size_is_capped_exactly(header):
    data = encode(b"a" * 1000, header)
    assert decode_body(data, header, max_size=1000) == b"a" * 1000
    err = decode_error(data, header, max_size=999)
    assert err.status == 413 and err.code == "request_too_large" and "999" in err.message


def test_an_intermediate_stage_is_capped_too():
    padded = struct.pack("<II", 0x184D2A50, 2 * MiB) + bytes(2 * MiB) + zstd_streamed(BODY)  # decodes to BODY
    assert decode_body(padded, "zstd", max_size=MiB) == BODY
    err = decode_error(gzip.compress(padded), "zstd, gzip", max_size=MiB)  # the gzip stage yields 2 MiB
    assert err.status == 413


@pytest.mark.parametrize("bomb_name,header", [("gzip_bomb", "gzip"), ("zstd_bomb", "zstd")])
def test_one_gib_bomb_is_413_with_bounded_memory(request, bomb_name, header):
    bomb = request.getfixturevalue(bomb_name)
    cap = 4 * MiB
    err, peak = peak_memory(lambda: decode_error(bomb, header, max_size=cap))
    assert err.status == 413 and err.code == "request_too_large"
    assert peak < 3 * cap + len(bomb)  # the output decoded so far, its joining, the undecoded input


@pytest.mark.parametrize("wbits,header", [(15, "deflate"), (-15, "deflate"), (31, "x-gzip")])
def test_deflate_family_bombs_are_413(wbits, header):
    bomb = zeros_bomb(wbits, 16)
    assert decode_body(bomb, header, max_size=16 * MiB) == bytes(16 * MiB)  # the bomb is valid data
    err, peak = peak_memory(lambda: decode_error(bomb, header, max_size=MiB))
    assert err.status == 413 and peak < 3 * MiB + len(bomb)


def test_zstd_bomb_in_several_small_frames_is_413():
    frame = zstandard.ZstdCompressor().compress(bytes(MiB))
    err, peak = peak_memory(lambda: decode_error(frame * 64, "zstd", max_size=MiB))
    assert err.status == 413 and peak < 3 * MiB + 64 * len(frame)


def test_zstd_frame_asking_for_a_huge_window_is_refused_before_decoding():
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    frame = compressor.compress(BODY) + compressor.flush()
    assert zstandard.get_frame_parameters(frame).window_size == 1 << 27
    err = decode_error(frame, "zstd", max_size=MiB)
    assert err.status == 413 and "window" in err.message
    assert decode_body(frame, "zstd", max_size=128 * MiB) == BODY  # a cap that large allows that window


# -- header helpers ---------------------------------------------------------------------


def test_content_encoding_joins_repeated_headers():
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip"), (b"Content-Encoding", b"zstd")]
    assert content_encoding(headers) == "gzip, zstd"
    assert content_encoding([(b"content-type", b"application/json")]) is None
    assert codings(content_encoding(headers)) == ["gzip", "zstd"]


@pytest.mark.parametrize(("raw", "model"), [
    (b'{"model": "gpt-5"}', "gpt-5"),
    (b'{"input": [{"model": "nested"}], "model": "top"}', "top"),  # only the top-level key
    (b'{"model": "\\u006dimo-v2-flash"}', "mimo-v2-flash"),
    (b'{"model": "a", "model": "b"}', "b"),  # as orjson: the last duplicate wins
    (b'{"model": "  "}', None), (b'{"model": 5}', None), (b'{"input": "x"}', None),
    (b'["model"]', None), (b'{"model": "x"', None), (b'{"model": "x"} {}', None), (b"\x1f\x8b\x08", None), (b"", None),
])
def test_model_of_reads_only_a_valid_object_s_model(raw, model):
    from mimo_asgi._decode import model_of, parse_body

    assert model_of(raw) == model
    if model is not None:
        assert parse_body(raw)[1] == model  # the skim agrees with the full parse
