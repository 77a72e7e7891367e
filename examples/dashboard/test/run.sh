#!/usr/bin/env bash
# The dashboard's browser test from a fresh machine: installs Debian's chromium if missing
# (apt-get, as root or through sudo), builds rtbus-server and the SDK packages, installs and
# builds the dashboard, and runs test/*.test.mjs in headless Chromium: browser.test.mjs (the
# dashboard, with a server restart) and sdk-browser.test.mjs (the client's fault scenarios on the
# browser's WebSocket).
#
#   examples/dashboard/test/run.sh
#
# Environment: CHROMIUM (a Chromium binary; default: `chromium` on PATH), RTBUS_SERVER_BIN (a
# built rtbus-server; default: `cargo build -p rtbus-server`), RTBUS_PACKAGES_BUILT=1 (packages/
# is installed and built already, e.g. by `cargo xtask test`). Leaves target/dashboard.png and
# target/dashboard-after-restart.png.
set -euo pipefail

dashboard=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo=$(cd "$dashboard/../.." && pwd)
started=$SECONDS
step() { echo "dashboard test: $* ($((SECONDS - started)) s)"; }

if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium"
  apt_started=$SECONDS
  if [ "$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null 2>&1; then sudo=sudo; else
    echo "dashboard test: chromium is missing and this user cannot install it; run \`apt-get install -y chromium\` as root or set CHROMIUM" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
  step "chromium installed in $((SECONDS - apt_started)) s"
fi
export CHROMIUM=${CHROMIUM:-$(command -v chromium)}
"$CHROMIUM" --version

# A relative path names a file from where this script was started, not from the dashboard.
case "${RTBUS_SERVER_BIN:-}" in "" | /*) ;; *) export RTBUS_SERVER_BIN="$PWD/$RTBUS_SERVER_BIN" ;; esac
if [ -z "${RTBUS_SERVER_BIN:-}" ]; then
  step "cargo build -p rtbus-server"
  (cd "$repo" && cargo build -q -p rtbus-server)
fi

if [ "${RTBUS_PACKAGES_BUILT:-}" != 1 ]; then
  step "SDK packages: npm ci, build"
  (cd "$repo/packages" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build --silent)
fi

cd "$dashboard"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "dashboard: npm ci"
  npm ci --no-audit --no-fund
fi
step "dashboard: typecheck, build"
npm run build --silent
step "dashboard: browser tests"
# The files by name: given the directory, Node 20 would run every .mjs in test/ as a test.
node --test --test-concurrency=1 test/*.test.mjs
step "done"
