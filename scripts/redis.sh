#!/usr/bin/env bash
# Make sure `redis-server` is installed (the store tests start their own on 127.0.0.1).
# Installs Debian's package when it is missing; never fails the caller: without it the
# Redis tests are skipped with a visible reason.
set -u

if command -v redis-server >/dev/null 2>&1; then
    echo "redis.sh: $(redis-server --version | head -n 1)"
    exit 0
fi

fail_soft() {
    echo "redis.sh: redis-server not installed: $1; the Redis store tests will be skipped." >&2
    exit 0
}

command -v apt-get >/dev/null 2>&1 || fail_soft "apt-get is not available (not a Debian-based system)"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        fail_soft "not root and no password-less sudo"
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "redis.sh: installing redis-server from Debian's packages"
$SUDO apt-get update -qq >/dev/null || fail_soft "apt-get update failed"
# The package's service is not needed (tests start their own server); a failing
# service start inside a container must not fail the install.
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null \
    || command -v redis-server >/dev/null 2>&1 \
    || fail_soft "apt-get install redis-server failed"

command -v redis-server >/dev/null 2>&1 || fail_soft "the package installed no redis-server on PATH"
echo "redis.sh: $(redis-server --version | head -n 1)"
