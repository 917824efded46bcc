#!/usr/bin/env bash
# Browser tests (tests/browser): the api's pages in headless Debian Chromium via Playwright,
# at phone size; screenshots under tests/artifacts/. Never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1
mkdir -p tests/artifacts
if ! api/.venv/bin/python -c "import playwright" 2>/dev/null; then
  echo "playwright missing in api/.venv (make install)" >&2
  exit 1
fi
PYTHONPATH=api api/.venv/bin/python -m pytest tests/browser -q -p no:cacheprovider "$@"
