#!/usr/bin/env bash
# The whole suite: lint, api tests on SQLite and PostgreSQL, bot tests, end-to-end and browser.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1
make -s lint
mkdir -p tests/artifacts
status=0
echo "== audit (pip-audit on both lock files)"
bash scripts/audit.sh || status=$?
echo "== api tests (SQLite + PostgreSQL), coverage of api/app"
# Coverage floor: the figure measured on 2026-12-02 (92.2 % of api/app's lines), rounded down.
# Raise it as coverage grows; a run restricted by arguments reports coverage but has no floor.
cov=(--cov=app --cov-report=term:skip-covered)
[ $# -gt 0 ] || cov+=(--cov-fail-under=92)
PYTHONPATH=api api/.venv/bin/python -m pytest tests/api -q -p no:cacheprovider "${cov[@]}" "$@" \
  || status=$?
for part in scripts/test.d/*.sh; do
  [ -e "$part" ] || continue
  echo "== $(basename "$part" .sh)"
  bash "$part" || status=$?
done
exit $status
