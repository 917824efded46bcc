#!/usr/bin/env bash
# Regenerates the initial migration from the models (there is no released schema yet).
set -euo pipefail
cd "$(dirname "$0")/../api"
rm -f alembic/versions/*.py
tmp=$(mktemp -d)
.venv/bin/alembic -x url="sqlite:///$tmp/x.db" revision --autogenerate -m "initial schema" --rev-id 0001 >/dev/null
rm -rf "$tmp"
.venv/bin/ruff format alembic/versions >/dev/null 2>&1 || true
echo "wrote $(ls alembic/versions/*.py)"
