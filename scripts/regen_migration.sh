#!/usr/bin/env bash
# Regenerates the initial migration from the models (there is no released schema yet). The
# hand-written later migrations (0002_… : PostgreSQL-only indexes) are kept and put back.
set -euo pipefail
cd "$(dirname "$0")/../api"
tmp=$(mktemp -d)
mkdir "$tmp/later"
find alembic/versions -maxdepth 1 -name '*.py' ! -name '0001_*' -exec mv {} "$tmp/later/" \;
rm -f alembic/versions/0001_*.py
.venv/bin/alembic -x url="sqlite:///$tmp/x.db" revision --autogenerate -m "initial schema" --rev-id 0001 >/dev/null
mv "$tmp"/later/*.py alembic/versions/ 2>/dev/null || true
rm -rf "$tmp"
.venv/bin/ruff format alembic/versions >/dev/null 2>&1 || true
echo "wrote $(ls alembic/versions/*.py)"
