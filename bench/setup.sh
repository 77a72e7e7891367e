#!/bin/sh
# Installs the benchmark peers from their registries, pinned by lock files:
# the Node `ws` peer from npm (package-lock.json), the Python `websockets` peer from PyPI into
# bench/.venv (requirements.txt). Idempotent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
(cd "$here/peers/node" && npm ci --no-audit --no-fund --loglevel=error)
if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/peers/python/requirements.txt"
