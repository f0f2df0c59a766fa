#!/usr/bin/env bash
# Set up the environment (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# Headless Chromium for the book's browser test (Debian package; skipped if already there).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[test] could not install chromium; the browser test will be skipped" >&2
fi
[ -f package.json ] && bash scripts/vendor_js.sh >/dev/null
exec .venv/bin/python -m pytest -q "$@"
