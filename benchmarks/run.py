"""`python -m benchmarks.run [--quick] [--only 1,3] [--no-venv]`: run the suite, print one table.

Unless `--no-venv` is given (or it already runs there), it first makes sure the benchmark's
own venv exists (`benchmarks/.venv`: benchmarks/requirements.txt + this project, editable;
created and installed once, reinstalled when requirements.txt changes) and re-runs itself
inside it, so LiteLLM never touches the project's environment.
`--quick` takes about 2 minutes, the full run about 6.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ._common import ROOT, Row

VENV = ROOT / "benchmarks" / ".venv"
REQUIREMENTS = ROOT / "benchmarks" / "requirements.txt"
STAMP = VENV / "requirements.sha256"

# number -> module; run in this order (cheap and in-process first, servers after).
SUITE = {"6": "json_codecs", "7": "redis_pool", "8": "session", "2": "translation", "3": "peer_litellm",
         "1": "passthrough", "4": "ttfb", "5": "concurrency"}


def _in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> Path:
    """The benchmark venv's python, creating or updating the venv when needed."""
    python = VENV / "bin" / "python"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if not python.exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print("installing benchmarks/requirements.txt and the project (once; ~1 minute) ...", file=sys.stderr,
              flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS), "-e", str(ROOT)],
                       check=True)
        STAMP.write_text(wanted)
    return python


def table(rows: list[Row]) -> str:
    head = ("benchmark", "ours", "baseline", "ratio", "target", "result")
    body = [(r.name, r.ours, r.baseline, f"{r.ratio:.2f}x" if r.ratio is not None else "-", r.target,
             "-" if r.passed is None else ("PASS" if r.passed else "FAIL")) for r in rows]
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |" for line in (head, *body)]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"- {note}" for r in rows for note in r.notes]
    return "\n".join(lines + ([""] + notes if notes else []))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (about 2 minutes)")
    parser.add_argument("--only", default="", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--no-venv", action="store_true", help="run in this interpreter (LiteLLM row skipped "
                                                               "if it is not installed)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # run one benchmark, print its rows as JSON
    args = parser.parse_args()
    if args.child:
        mod = __import__(f"benchmarks.{SUITE[args.child]}", fromlist=["run"])
        print(json.dumps([dataclasses.asdict(r) for r in mod.run(args.quick)]))
        return
    if not args.no_venv and not _in_venv():
        python = ensure_venv()
        os.chdir(ROOT)
        os.execv(str(python), [str(python), "-m", "benchmarks.run", *sys.argv[1:]])
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or list(SUITE)
    print(f"# mimo_asgi benchmarks ({'quick' if args.quick else 'full'}) - Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.platform()}", flush=True)
    rows: list[Row] = []
    started = time.monotonic()
    for number in [n for n in SUITE if n in wanted]:
        module = SUITE[number]
        t0 = time.monotonic()
        print(f"running {number}: {module} ...", file=sys.stderr, flush=True)
        # Each benchmark in a fresh process: no imports, memory or loop state leak between them.
        cmd = [sys.executable, "-m", "benchmarks.run", "--no-venv", "--child", number] + (["--quick"] * args.quick)
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            rows += [Row(**r) for r in json.loads(done.stdout.strip().splitlines()[-1])]
        except (ValueError, IndexError):
            rows.append(Row(f"{number} {module}", "error", f"exit {done.returncode}", None, "-", False,
                            [f"{number}: failed, see stderr"]))
        print(f"  {number} done in {time.monotonic() - t0:.0f}s", file=sys.stderr, flush=True)
    print(table(sorted(rows, key=lambda r: r.name)))
    print(f"\n(total {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    main()
