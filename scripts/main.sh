#!/usr/bin/env bash
# The main job: set up (idempotent), run the default grid on the real ESC-50 (cached stages are
# reused), execute the notebooks with papermill and build the HTML book into book/_build/html.
# Extra arguments (--set KEY=VALUE, --profile, --esc50, --artifacts) go to both steps, e.g.
#   bash scripts/main.sh --set seed=1
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
.venv/bin/python -m clap_lib run "$@"
bash scripts/vendor_js.sh >/dev/null
.venv/bin/python -m clap_lib book build "$@"
.venv/bin/python -m clap_lib book scan  # no absolute path of this machine in the published book
