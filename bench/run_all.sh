#!/usr/bin/env bash
# Every benchmark, one after the other (they share 2 cores: never in parallel). `make bench`.
# Each prints its own figures; a failing bench fails the run but the others still run.
set -uo pipefail
cd "$(dirname "$0")/.."
API_PY=api/.venv/bin/python
status=0

echo "## ledger import (bench/import_bench.py)"
"$API_PY" bench/import_bench.py || status=$?
echo
echo "## POST /api/v1/lookup over HTTP: latency, one request at a time (bench/lookup_bench.py)"
"$API_PY" bench/lookup_bench.py --requests 1000 --concurrency 1 --workers 1 || status=$?
echo
echo "## POST /api/v1/lookup over HTTP: throughput, 8 in flight, 2 workers"
"$API_PY" bench/lookup_bench.py --requests 5000 --concurrency 8 --workers 2 || status=$?

exit $status
