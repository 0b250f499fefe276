#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install the package with everything the tests,
# the benchmarks and the local pipeline need. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Snowstorm needs Python >= 3.11")'
  "$PYTHON" -m venv .venv
fi
# uv resolves and installs in seconds; use the one on PATH, or put one in the venv.
UV="$(command -v uv || true)"
if [ -z "$UV" ]; then
  if [ ! -x .venv/bin/uv ]; then
    .venv/bin/python -m ensurepip --upgrade >/dev/null 2>&1 || true
    # -qq: errors only. A machine's pip configuration may name index locations that do not exist, and pip warns
    # about each on every install; a successful set-up prints nothing.
    .venv/bin/python -m pip install -qq --disable-pip-version-check uv
  fi
  UV=.venv/bin/uv
fi
# The system's certificate store, not only uv's bundled one: behind a TLS-inspecting proxy (corporate networks) the
# proxy's CA is trusted there, as pip trusts it.
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}"
"$UV" pip install --quiet --python .venv/bin/python -e ".[dev]"
