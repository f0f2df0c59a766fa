#!/usr/bin/env bash
# Set up the environment (idempotent) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# Headless Chromium + its WebDriver for the book's browser test (Debian packages; Selenium is given
# /usr/bin/chromedriver, so it never downloads one). Skipped if both are already there.
if { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; } && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "[test] could not install chromium/chromium-driver; the browser tests will be skipped" >&2
fi
[ -f package.json ] && bash scripts/vendor_js.sh >/dev/null
# Two test processes (pytest-xdist; the machine this is sized for has two cores), each with one OpenMP thread. A
# test module is one unit of work, the modules sharing the session's tiny grid are one, slow tests are handed out
# first (tests/conftest.py). `bash scripts/test.sh -n 0` runs everything in this process.
exec .venv/bin/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder "$@"
