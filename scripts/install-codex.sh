#!/usr/bin/env bash
# Install the pinned Codex CLI (npm @openai/codex) for the end-to-end tests.
#
#   scripts/install-codex.sh            # prints the path of the codex executable on stdout
#
# It installs into a cache directory outside the clone, one per version:
#   ${MIMO_ASGI_CODEX_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mimo_asgi/codex-$CODEX_VERSION}
# and reuses it when it is already there (the tests look in the same place, or at $MIMO_ASGI_CODEX).
# The install lands in a temporary sibling directory and is renamed into place only once it works,
# so an interrupted run never leaves a half-installed Codex behind to be reused.
#
# Exit status: 0 with the path printed when Codex is usable; 1 with the reason on stderr otherwise
# (no npm, registry unreachable, unsupported platform). Callers that can live without Codex, such
# as .ci/run, treat 1 as "the e2e tests will be skipped".
set -uo pipefail

VERSION="${CODEX_VERSION:-0.171.0}"
DIR="${MIMO_ASGI_CODEX_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mimo_asgi/codex-$VERSION}"
BIN="$DIR/node_modules/.bin/codex"
# npm's defaults wait minutes for a dead registry; give up sooner and say why.
NPM_TIMEOUT_S="${CODEX_INSTALL_TIMEOUT:-300}"

say() { echo "install-codex: $*" >&2; }

limited() {  # limited SECONDS CMD...: run CMD, killed after SECONDS where coreutils' timeout exists
    local seconds="$1"; shift
    if command -v timeout >/dev/null 2>&1; then timeout "$seconds" "$@"; else "$@"; fi
}

works() {  # the executable runs and reports the pinned version
    local out
    out="$(limited 30 "$1" --version 2>/dev/null)" || return 1
    [[ "$out" == *" $VERSION"* ]]
}

if [[ -x "$BIN" ]] && works "$BIN"; then
    echo "$BIN"
    exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "node and npm are needed to install @openai/codex@$VERSION and were not found on PATH"
    exit 1
fi

mkdir -p "$(dirname "$DIR")" || { say "cannot create $(dirname "$DIR")"; exit 1; }
STAGE="$(mktemp -d "$DIR.partial.XXXXXX")" || { say "cannot create a staging directory next to $DIR"; exit 1; }
trap 'rm -rf "$STAGE"' EXIT

say "installing @openai/codex@$VERSION into $DIR"
LOG="$STAGE.log"
limited "$NPM_TIMEOUT_S" npm install --prefix "$STAGE" --no-audit --no-fund --no-update-notifier \
    --loglevel=error --fetch-retries=1 --fetch-timeout=30000 "@openai/codex@$VERSION" >"$LOG" 2>&1
status=$?
if [[ $status -ne 0 ]]; then
    if [[ $status -eq 124 ]]; then
        say "npm did not finish within ${NPM_TIMEOUT_S}s (is the npm registry reachable?)"
    else
        say "npm install failed (exit $status); is the npm registry ($(npm config get registry 2>/dev/null)) reachable?"
    fi
    grep -v "^npm error  *at " "$LOG" | head -n 8 | sed "s/^/  /" >&2
    rm -f "$LOG"
    exit 1
fi
rm -f "$LOG"

if ! works "$STAGE/node_modules/.bin/codex"; then
    say "@openai/codex@$VERSION installed but does not run here (platform $(uname -sm)?)"
    exit 1
fi

rm -rf "$DIR"  # a broken or different install at this path: replace it
if ! mv "$STAGE" "$DIR"; then
    # Another run may have installed it meanwhile; use theirs if it works.
    if [[ -x "$BIN" ]] && works "$BIN"; then
        echo "$BIN"
        exit 0
    fi
    say "cannot move the install into $DIR"
    exit 1
fi
trap - EXIT
echo "$BIN"
