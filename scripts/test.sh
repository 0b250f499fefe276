#!/usr/bin/env bash
# Set up the environment and run the linters and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install_browser.sh   # Debian's Chromium for the UI tests (tests/ui; Playwright is a dev extra)
bash scripts/postgres.sh install  # Debian's PostgreSQL for the contention tests (each run starts and stops its own server)
bash scripts/redis.sh install     # Debian's Redis, the Celery broker of the cluster test (tests/local/test_cluster.py)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
