#!/usr/bin/env bash
# `make evaluate`: NLU report of the running model on the held-out set nlu_data/test/ (never
# trained on). Writes bot/results/nlu/ (Rasa's reports, confusion matrix PNG) and
# bot/results/nlu_report.md + nlu_summary.json (accuracy, macro-F1, entity P/R/F1, per intent).
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="bot${PYTHONPATH:+:$PYTHONPATH}"   # custom components (bot/components/)
export RASA_CACHE_DIRECTORY="${XDG_CACHE_HOME:-$HOME/.cache}/fangben/rasa-cache"
MODEL=$(ls -t bot/models/*.tar.gz 2>/dev/null | head -n 1 || true)
if [ -z "$MODEL" ]; then
  echo "没有模型：先运行 make train" >&2
  exit 1
fi
rm -rf bot/results/nlu
mkdir -p bot/results/nlu
start=$(date +%s)
bot/.venv/bin/rasa test nlu --nlu nlu_data/test --model "$MODEL" --out bot/results/nlu \
  --domain bot/domain --quiet >bot/results/nlu/rasa_test.log 2>&1 \
  || { tail -n 30 bot/results/nlu/rasa_test.log >&2; exit 1; }
bot/.venv/bin/python bot/scripts/nlu_report.py --results bot/results/nlu --model "$MODEL" \
  --seconds $(( $(date +%s) - start ))
