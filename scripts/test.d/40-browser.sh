#!/usr/bin/env bash
# Browser tests (tests/browser): the api's pages in headless Debian Chromium via Playwright,
# the web chat at phone size, the staff console at 1366×768; screenshots under
# tests/artifacts/. Never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1
mkdir -p tests/artifacts
if ! api/.venv/bin/python -c "import playwright" 2>/dev/null; then
  echo "playwright missing in api/.venv (make install)" >&2
  exit 1
fi
# One pytest process per folder (chat, console): Playwright's sync API allows only one
# running instance per process, and each folder keeps its browser for its whole run.
status=0
for dir in tests/browser/*/; do
  PYTHONPATH=api api/.venv/bin/python -m pytest "$dir" -q -p no:cacheprovider "$@" || status=$?
done
exit $status
