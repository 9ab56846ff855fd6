"""Compressed request bodies through the middleware: MiMo-routed ones are translated from the
decoded JSON; pass-through ones reach the host byte for byte, Content-Encoding header included."""

import gzip
import json
import zlib

import httpx
import pytest
import zstandard
from asgiref.testing import ApplicationCommunicator
from support import TEST_KEY, RecordingHost, host_app, http_scope

from mimo_asgi import Account, Limits, MimoMiddleware
from mimo_asgi.testing import Answer, serve_in_thread

MiB = 1 << 20
ROUTES = {
    "/v1/chat/completions": {"model": "gpt-5.5", "messages": [{"role": "user", "content": "compressed h\u00e9llo"}]},
    "/v1/responses": {"model": "gpt-5.5", "input": "compressed h\u00e9llo"},
}


def zstd_streamed(data):
    """As Codex sends it: one streamed frame, no content size in its header."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


ENCODERS = {"zstd": zstd_streamed, "gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress,
            "identity": lambda data: data}


def encode(data, header):
    for name in (n.strip().lower() for n in header.split(",")):
        data = ENCODERS[name](data)
    return data


def zstd_bomb(mib):
    zeros = bytes(MiB)
    compressor = zstandard.ZstdCompressor().compressobj()
    return b"".join([compressor.compress(zeros) for _ in range(mib)] + [compressor.flush()])


def gzip_bomb(mib):
    """`mib` MiB of zeros as one gzip stream (the same full-flushed segment repeated; trailer not needed:
    decoding must stop long before it)."""
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + segment * (mib - 1)


@pytest.fixture(scope="module")
def gateway_url(fake_server):
    """One gateway for the module (1 MiB body cap, gpt-5* on MiMo); `fake` resets the upstream per test."""
    account = Account("main", TEST_KEY, base_url=fake_server[1] + "/v1", upstream="mimo",
                      models={"gpt-5*": "mimo-v2.5-pro"})
    mw = MimoMiddleware(host_app(), accounts=[account], api_key=None, seal_key="k", limits=Limits(max_body_size=MiB))
    with serve_in_thread(mw) as url:
        yield url


def post(url, path, content, encoding, **kw):
    return httpx.post(url + path, content=content, timeout=10,
                      headers={"content-type": "application/json", "content-encoding": encoding, **kw})


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code and body["error"]["type"] == "invalid_request_error"
    assert TEST_KEY not in response.text
    return body["error"]


def user_text(sent):
    """The user's words in the chat body the fake MiMo received."""
    user = next(m for m in sent["messages"] if m["role"] == "user")
    content = user["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


# -- MiMo-routed: translated from the decoded JSON ------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("encoding", ["zstd", "gzip", "deflate", "gzip, zstd", "zstd, gzip", "ZSTD", "identity"])
def test_mimo_request_is_translated_from_the_decoded_body(gateway_url, fake, path, encoding):
    url = gateway_url
    plain = json.dumps(ROUTES[path]).encode()
    response = post(url, path, encode(plain, encoding), encoding)
    assert response.status_code == 200, response.text
    assert "Hello from fake MiMo." in response.text
    sent = fake.requests[-1]
    assert sent.status == 200 and sent.body["model"] == "mimo-v2.5-pro"
    assert user_text(sent.body) == "compressed h\u00e9llo"
    assert "content-encoding" not in sent.headers  # we send MiMo plain JSON of our own


def test_mimo_stream_from_a_zstd_body(gateway_url, fake):
    url = gateway_url
    fake.queue(Answer(text="streamed answer", chunk_size=4))
    body = json.dumps({**ROUTES["/v1/responses"], "stream": True}).encode()
    response = post(url, "/v1/responses", zstd_streamed(body), "zstd")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [line.split(": ", 1)[1] for line in response.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    deltas = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert "".join(d["delta"] for d in deltas if d["type"] == "response.output_text.delta") == "streamed answer"
    assert fake.requests[-1].body["stream"] is True


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("encoding,content", [
    ("zstd", b"this is not zstd"),
    ("zstd", zstd_streamed(json.dumps(ROUTES["/v1/responses"]).encode())[:-4]),
    ("gzip", gzip.compress(b'{"model": "gpt-5.5"}')[:-6]),
    ("deflate", b"\x00\x01garbage"),
    ("gzip, zstd", zstd_streamed(b'{"model": "gpt-5.5"}')),  # zstd layer fine, no gzip inside
], ids=["zstd-garbage", "zstd-truncated", "gzip-truncated", "deflate-garbage", "stack-missing-layer"])
def test_corrupt_body_is_400_and_reaches_no_upstream(gateway_url, fake, path, encoding, content):
    url = gateway_url
    error = assert_error(post(url, path, content, encoding), 400, "invalid_body_encoding")
    assert "Content-Encoding" in error["message"]
    assert fake.requests == []


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, br"])
def test_unknown_encoding_is_415_naming_what_we_accept(gateway_url, fake, path, encoding):
    url = gateway_url
    response = post(url, path, json.dumps(ROUTES[path]).encode(), encoding)
    assert_error(response, 415, "unsupported_content_encoding")
    assert response.headers["accept-encoding"] == "zstd, gzip, deflate"
    assert fake.requests == []


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("encoding,bomb", [("zstd", zstd_bomb), ("gzip", gzip_bomb)])
def test_decompression_bomb_is_413(gateway_url, fake, path, encoding, bomb):
    url = gateway_url
    content = bomb(256)  # 256 MiB of zeros; on the wire well under the 1 MiB cap
    assert len(content) < MiB
    error = assert_error(post(url, path, content, encoding), 413, "request_too_large")
    assert str(MiB) in error["message"]
    assert fake.requests == []
    # the same cap lets a compressed body that decodes within it through
    assert post(url, path, zstd_streamed(json.dumps(ROUTES[path]).encode()), "zstd").status_code == 200


def test_empty_compressed_body_is_invalid_json(gateway_url, fake):
    url = gateway_url
    assert_error(post(url, "/v1/responses", b"", "gzip"), 400, "invalid_json")


# -- pass-through: the host gets the original bytes and headers ------------------------------


def encoded_scope(path, encoding):
    return http_scope(path=path, headers=[(b"content-encoding", encoding.encode())])


async def exchange(mw, scope, parts):
    comm = ApplicationCommunicator(mw, scope)
    for i, part in enumerate(parts):
        await comm.send_input({"type": "http.request", "body": part, "more_body": i < len(parts) - 1})
    start = await comm.receive_output(2)
    body = await comm.receive_output(2)
    await comm.wait(2)
    return start, body


def passthrough_middleware(host, **kw):
    return MimoMiddleware(host, api_key="sk-test-env", base_url="http://127.0.0.1:9/v1", seal_key="k", **kw)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("encoding", ["zstd", "gzip", "deflate", "gzip, zstd", "X-GZIP"])
async def test_passthrough_host_gets_the_original_compressed_bytes_and_header(path, encoding):
    host = RecordingHost()
    seen = []
    body = {**ROUTES[path], "model": "gpt-4o"}  # not a MiMo model: the host's request
    compressed = encode(json.dumps(body).encode(), encoding)
    parts = [compressed[:7], compressed[7:20], compressed[20:]]
    scope = encoded_scope(path, encoding)
    mw = passthrough_middleware(host, resolver=lambda request: seen.append(request) or None)
    start, answer = await exchange(mw, scope, parts)
    assert start["status"] == 200 and answer["body"] == b"host"
    assert [m["body"] for m in host.received] == parts  # byte for byte, in the client's chunking
    assert b"".join(m["body"] for m in host.received) == compressed
    assert host.scopes[0]["headers"] == scope["headers"]  # content-encoding still there, untouched
    assert seen[0].model == "gpt-4o" and seen[0].body == body  # the resolver decided on the decoded JSON


@pytest.mark.anyio
@pytest.mark.parametrize("encoding,content,status,code", [
    ("zstd", b"not zstd at all", 400, "invalid_body_encoding"),
    ("br", b"\x0b\x02\x80hello\x03", 415, "unsupported_content_encoding"),
    ("gzip", gzip_bomb(64), 413, "request_too_large"),
], ids=["corrupt", "unknown", "bomb"])
async def test_undecodable_body_is_answered_by_us_and_never_reaches_the_host(encoding, content, status, code):
    host = RecordingHost()
    start, answer = await exchange(passthrough_middleware(host, limits=Limits(max_body_size=MiB)),
                                   encoded_scope("/v1/chat/completions", encoding), [content])
    assert start["status"] == status
    assert json.loads(answer["body"])["error"]["code"] == code
    assert host.received == [] and host.scopes == []
