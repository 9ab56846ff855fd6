"""Codex CLI end to end: the example gateway on uvicorn, the fake MiMo behind it, Codex in front.

Codex is found at `$MIMO_ASGI_CODEX`, else where `scripts/install-codex.sh` puts it:
`${XDG_CACHE_HOME:-~/.cache}/mimo_asgi/codex-<CODEX_VERSION>/node_modules/.bin/codex`. Without it
(or without node) every test using `codex` is skipped, and the skip says why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import TEST_KEY

from mimo_asgi.testing import serve_in_thread

CODEX_VERSION = "0.171.0"
REPO = Path(__file__).resolve().parents[2]
CLIENT_MODEL = "gpt-5.5"  # a name Codex knows, so it sends its full tool set (apply_patch included)
UPSTREAM_MODEL = "mimo-v2.5-pro"
# A run that takes longer than this is a hang: Codex itself answers these scenarios in about a second.
RUN_TIMEOUT = 30.0
# `workspace-write` runs commands under Codex's Linux sandbox (bubblewrap); hosts without unprivileged
# user namespaces can set `danger-full-access` here.
SANDBOX = os.environ.get("MIMO_ASGI_CODEX_SANDBOX", "workspace-write")


def codex_path() -> Path:
    explicit = os.environ.get("MIMO_ASGI_CODEX", "").strip()
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "mimo_asgi" / f"codex-{CODEX_VERSION}" / "node_modules" / ".bin" / "codex"


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The Codex executable, checked to run once per session; skips the test when there is none."""
    path = codex_path()
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.skip(f"Codex CLI not found at {path}: run scripts/install-codex.sh "
                    f"(installs @openai/codex@{CODEX_VERSION}) or set MIMO_ASGI_CODEX")
    if shutil.which("node") is None:
        pytest.skip(f"Codex CLI at {path} needs node, which is not on PATH")
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"Codex CLI at {path} does not run: {exc!r}")
    if out.returncode != 0:
        pytest.skip(f"Codex CLI at {path} does not run: exit {out.returncode}: {out.stderr.strip()[-300:]}")
    return path


def load_example_gateway() -> Any:
    """`examples/gateway.py` loaded from the checkout (the `examples` directory is not installed)."""
    spec = importlib.util.spec_from_file_location("mimo_asgi_e2e_example_gateway", REPO / "examples" / "gateway.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_gateway() -> Any:
    return load_example_gateway()


@pytest.fixture
def gateway_url(example_gateway, fake_url):
    """The example gateway built from its environment variables, served on 127.0.0.1: base URL + /v1."""
    env = {"MIMO_API_KEY": TEST_KEY, "MIMO_BASE_URL": fake_url, "MIMO_MODEL_MAP": f"{CLIENT_MODEL}={UPSTREAM_MODEL}"}
    with serve_in_thread(example_gateway.build(env)) as url:
        yield url + "/v1"


@dataclass
class CodexResult:
    """One `codex exec` run: exit status, raw output, and the JSONL events when `--json` was used."""

    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    events: list[dict[str, Any]] = field(default_factory=list)

    def items(self, kind: str) -> list[dict[str, Any]]:
        """The completed items of one type (`reasoning`, `agent_message`, `command_execution`, ...)."""
        return [e["item"] for e in self.events if e.get("type") == "item.completed" and e["item"].get("type") == kind]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def describe(self) -> str:
        return f"exit {self.returncode} after {self.elapsed:.1f}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr[-3000:]}"


def write_config(home: Path, base_url: str) -> None:
    (home / "config.toml").write_text(
        f'model = "{CLIENT_MODEL}"\n'
        'model_provider = "gw"\n'
        "\n"
        "[model_providers.gw]\n"
        'name = "mimo_asgi gateway"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "GW_KEY"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
        "stream_idle_timeout_ms = 10000\n"
    )


@pytest.fixture
def workspace(tmp_path) -> Path:
    """The directory Codex works in (its cwd)."""
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def codex(codex_bin, gateway_url, tmp_path, workspace):
    """codex(prompt, *args, sandboxed=False, json_events=True) -> CodexResult: `codex exec` against the gateway, isolated in tmp_path.

    HOME and CODEX_HOME live in tmp_path and the environment is minimal, so no user configuration,
    credentials or session history leak in or out. `sandboxed` adds `-s $MIMO_ASGI_CODEX_SANDBOX`
    (default workspace-write), for scenarios where Codex runs commands or edits files. stdin is /dev/null (with a pipe Codex waits for
    more input). A run over RUN_TIMEOUT fails the test; its whole process group is killed.
    """
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    write_config(codex_home, gateway_url)
    return runner(codex_bin, workspace, home, {"GW_KEY": "dummy-client-key"})


def runner(codex_bin: Path, workspace: Path, home: Path, extra_env: dict[str, str]) -> Any:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
           "LANG": "C.UTF-8", **extra_env}
    if os.environ.get("RUST_LOG"):  # for diagnosing a failure: RUST_LOG=debug pytest tests/e2e
        env["RUST_LOG"] = os.environ["RUST_LOG"]

    def run(prompt: str, *args: str, sandboxed: bool = False, json_events: bool = True) -> CodexResult:
        argv = [str(codex_bin), "exec", "--skip-git-repo-check", *(["--json"] if json_events else []),
                *(["-s", SANDBOX] if sandboxed else []), *args, prompt]
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            # codex is a node launcher for a native binary: kill the group, not just the launcher.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"codex did not finish within {RUN_TIMEOUT}s\nstdout:\n{stdout}\nstderr:\n{stderr[-3000:]}")
        result = CodexResult(proc.returncode, stdout, stderr, time.monotonic() - started)
        if json_events:
            for line in stdout.splitlines():
                if line.strip():
                    try:
                        result.events.append(json.loads(line))
                    except json.JSONDecodeError:
                        pytest.fail(f"codex --json printed a line that is not JSON: {line!r}\n{result.describe()}")
        return result

    return run


class ScopeLog:
    """An ASGI app in front of another, noting the type and path of every scope it passes on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.scopes: list[tuple[str, str | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append((scope["type"], scope.get("path")))
        await self.app(scope, receive, send)

    def count(self, kind: str) -> int:
        return sum(1 for t, _ in self.scopes if t == kind)


@pytest.fixture
def builtin_codex(codex_bin, example_gateway, fake_url, tmp_path, workspace):
    """builtin_codex(websocket="bridge", auto_compact=None) -> (run, scopes): Codex configured as most
    users do, with its built-in OpenAI provider pointed at the example gateway by `openai_base_url`
    (no provider block), and the ASGI scopes the gateway received. `auto_compact` sets
    `model_auto_compact_token_limit`. CODEX_API_KEY is set, so Codex sends an Authorization header."""
    with contextlib.ExitStack() as stack:

        def start(websocket: str = "bridge", auto_compact: int | None = None) -> tuple[Any, ScopeLog]:
            env = {"MIMO_API_KEY": TEST_KEY, "MIMO_BASE_URL": fake_url, "MIMO_ASGI_WEBSOCKET": websocket,
                   "MIMO_MODEL_MAP": f"{CLIENT_MODEL}={UPSTREAM_MODEL}"}
            scopes = ScopeLog(example_gateway.build(env))
            url = stack.enter_context(serve_in_thread(scopes))
            home = tmp_path / "home"
            (home / ".codex").mkdir(parents=True)
            config = f'model = "{CLIENT_MODEL}"\nopenai_base_url = "{url}/v1"\n'
            if auto_compact is not None:
                config += f"model_auto_compact_token_limit = {auto_compact}\n"
            (home / ".codex" / "config.toml").write_text(config)
            return runner(codex_bin, workspace, home, {"CODEX_API_KEY": "dummy-client-key"}), scopes

        yield start
