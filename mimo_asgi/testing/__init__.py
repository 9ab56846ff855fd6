"""A faithful fake of Xiaomi MiMo's OpenAI-compatible API, for tests.

`FakeMimo` is an ASGI app: it rejects what MiMo rejects (same statuses and bodies), streams the
way MiMo streams, plays scripted `Answer`s (text, reasoning, tool calls, usage, errors, cuts,
stalls) and records every request with keys replaced by fingerprints. `serve` and
`serve_in_thread` run any ASGI app under uvicorn on 127.0.0.1. The pytest plugin
(`mimo_asgi.testing.plugin`, loaded automatically) provides the `fake_mimo`, `fake_mimo_url` and
`mimo_gateway` fixtures.
"""

from ._fake import DEFAULT_MODELS, TOKEN_PLAN_MODELS, FakeMimo, RecordedRequest, key_fingerprint
from ._script import Answer, ToolCall, Usage, error_body
from ._server import serve, serve_in_thread
from ._validate import PASS_BACK

__all__ = [
    "DEFAULT_MODELS",
    "PASS_BACK",
    "TOKEN_PLAN_MODELS",
    "Answer",
    "FakeMimo",
    "RecordedRequest",
    "ToolCall",
    "Usage",
    "error_body",
    "key_fingerprint",
    "serve",
    "serve_in_thread",
]
