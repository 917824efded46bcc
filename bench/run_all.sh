#!/usr/bin/env bash
# Every benchmark, one after the other (they share 2 cores: never in parallel). `make bench`.
# Each prints its own figures; a failing bench fails the run but the others still run.
#   bash bench/run_all.sh          every bench (make bench)
#   bash bench/run_all.sh scale    only the scale figures beside their anchors (make bench-scale)
# Every figure also goes to one JSON file, bench/results/<UTC time>.json (git-ignored), and
# bench/summary.py prints the scale figures against their goals at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
API_PY=api/.venv/bin/python
status=0
mkdir -p bench/results
export BENCH_RESULTS="${BENCH_RESULTS:-$PWD/bench/results/$(date -u +%Y%m%dT%H%M%SZ).json}"
echo "figures go to $BENCH_RESULTS"

scale() {
  echo
  echo "## scale: staff side with a province's ledger (3.1M units) and 200,000 petitions in PostgreSQL (bench/console_bench.py --units)"
  # BENCH_CONSOLE_KEEP=SCHEMA seeds that schema once and reuses it on the next runs.
  "$API_PY" bench/console_bench.py --units 3100000 --petitions 200000 --requests 30 --target-ms 500 \
    ${BENCH_CONSOLE_KEEP:+--keep "$BENCH_CONSOLE_KEEP"} || status=$?
  echo
  echo "## scale: a province's ledger (3.1M units) imported into PostgreSQL beside a raw COPY of the same units.csv (bench/import_bench.py --units)"
  "$API_PY" bench/import_bench.py --units 3100000 --backends postgresql --xlsx-units 0 || status=$?
  echo
  echo "## scale: POST /api/v1/lookup beside a FastAPI hello-world: demo ledger and 300,000 units in PostgreSQL, one worker each (bench/lookup_scale_bench.py)"
  "$API_PY" bench/lookup_scale_bench.py || status=$?
  echo
  echo "## scale: bot — Rasa CPU per message, 50 conversations at residents' pace on 1 and 2 replicas (PostgreSQL tracker, Redis lock store), RSS per replica (bench/bot_scale_bench.py)"
  bot/.venv/bin/python bench/bot_scale_bench.py || status=$?
}

if [ "${1:-all}" = scale ]; then
  scale
  "$API_PY" bench/summary.py "$BENCH_RESULTS" || status=$?
  exit $status
fi

echo "## ledger import (bench/import_bench.py)"
"$API_PY" bench/import_bench.py || status=$?
echo
echo "## ledger upload as a job: /healthz p50/p99 during a 400k-row upload, api RSS on an XLSX bomb (bench/upload_health_bench.py)"
"$API_PY" bench/upload_health_bench.py || status=$?
echo
echo "## POST /api/v1/lookup over HTTP: latency, one request at a time (bench/lookup_bench.py)"
"$API_PY" bench/lookup_bench.py --requests 1000 --concurrency 1 --workers 1 || status=$?
echo
echo "## POST /api/v1/lookup over HTTP: throughput, 8 in flight, 2 workers"
"$API_PY" bench/lookup_bench.py --requests 5000 --concurrency 8 --workers 2 || status=$?
echo
echo "## console pages and search with 200,000 petitions in PostgreSQL (bench/console_bench.py)"
"$API_PY" bench/console_bench.py || status=$?
echo
echo "## deadline job over 200,000 petitions in PostgreSQL: backlog, rerun, next day (bench/deadline_bench.py)"
"$API_PY" bench/deadline_bench.py || status=$?
echo
echo "## notifications: committed change -> web-chat bubble via the worker (bench/notify_bench.py)"
"$API_PY" bench/notify_bench.py || status=$?
if [ -f bench/bot_bench.py ]; then
  echo
  echo "## bot: message latency over REST, 10 conversations; training time; model size"
  bot/.venv/bin/python bench/bot_bench.py || status=$?
fi
echo
echo "## NLU: training time; held-out intent accuracy / macro-F1 vs baseline (bench/nlu_bench.py)"
bot/.venv/bin/python bench/nlu_bench.py || status=$?
echo
echo "## training job (bot/trainer): full-config training time, held-out and conversation evaluation times (bench/train_bench.py)"
bot/.venv/bin/python bench/train_bench.py || status=$?
echo
echo "## conversation suite: turns passing, reply length (bench/conversation_bench.py)"
bot/.venv/bin/python bench/conversation_bench.py || status=$?
echo
echo "## web chat: 100 residents at once over api → Rasa → action server → api, 3 rounds (bench/chat_load_bench.py)"
bot/.venv/bin/python bench/chat_load_bench.py --residents 100 --rounds 3 || status=$?
echo
echo "## model switch: promotion/rollback -> every Rasa serving it, 2 replicas (bench/model_switch_bench.py)"
bot/.venv/bin/python bench/model_switch_bench.py --switches 6 --replicas 2 || status=$?

scale
"$API_PY" bench/summary.py "$BENCH_RESULTS" || status=$?
exit $status
