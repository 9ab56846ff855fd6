"""The package ships py.typed, so its annotations are a promise: `mypy mimo_asgi` (configured in
pyproject.toml) must report nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_reports_nothing():
    # No cache: the run leaves nothing in the tree and never reuses a stale result.
    done = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--cache-dir", os.devnull,
                           "mimo_asgi"], cwd=ROOT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        pytest.fail(f"mypy reports:\n{output}", pytrace=False)
    checked = re.search(r"Success: no issues found in (\d+) source files", done.stdout)
    assert checked and int(checked[1]) > 0, f"mypy checked nothing:\n{output}"
