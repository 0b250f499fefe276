#!/usr/bin/env bash
# Install what the UI tests (tests/ui, marker `ui`) need besides the Playwright package (a dev extra, installed by
# scripts/bootstrap.sh): Debian's Chromium at /usr/bin/chromium. Playwright only drives the system browser
# (executable_path); it downloads no browser of its own, so `playwright install` is never run. Needs root on Debian
# for apt-get; safe to run again: it only checks (about a second) when both are already there. Run it after
# scripts/bootstrap.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium
PYTHON=.venv/bin/python

if [ ! -x "$PYTHON" ]; then
  echo "install_browser.sh: $PYTHON is missing; run scripts/bootstrap.sh first." >&2
  exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Not fatal: without a browser the UI tests skip (with this reason) and everything else still runs.
    echo "install_browser.sh: $CHROMIUM is missing and installing it needs root (apt-get install chromium);" \
      "the UI tests will be skipped." >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi

# The Playwright package is one of the dev extras that scripts/bootstrap.sh installs.
if ! "$PYTHON" -c 'import playwright.sync_api' 2>/dev/null; then
  echo "install_browser.sh: the playwright package is missing from .venv; run scripts/bootstrap.sh." >&2
  exit 1
fi

# Debian's launcher sources /etc/chromium.d/dev-shm, whose test of /dev/shm prints "[: ...: unexpected operator" on
# machines that list /dev/shm twice; the browser itself is fine. Show its error only if the version call fails.
"$CHROMIUM" --version 2>/dev/null || "$CHROMIUM" --version
"$PYTHON" -c 'from importlib.metadata import version; print("playwright", version("playwright"))'
