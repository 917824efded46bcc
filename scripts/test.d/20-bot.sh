#!/usr/bin/env bash
# Bot part of `make test`: model (trained only when its inputs changed), action and NLU tests,
# `rasa data validate`, and the conversation test stories in bot/tests/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
export RASA_CACHE_DIRECTORY="${XDG_CACHE_HOME:-$HOME/.cache}/fangben/rasa-cache"
status=0

bash scripts/train.sh || exit 1
MODEL=$(ls -t bot/models/*.tar.gz | head -n 1)

echo "-- pytest tests/bot"
# tests/bot/channels run once, from 25-wechat.sh.
bot/.venv/bin/python -m pytest tests/bot -q -p no:cacheprovider --ignore=tests/bot/channels || status=$?

echo "-- rasa data validate"
mapfile -t NLU_FILES < <(find nlu_data -type f -name '*.yml' -not -path 'nlu_data/test/*' | sort)
out=$(bot/.venv/bin/rasa data validate --config bot/config.yml --domain bot/domain \
  --data "${NLU_FILES[@]}" bot/data 2>&1) || { echo "$out" | tail -n 30; status=1; }
# Two known notices are not problems: responses sent by custom actions are "not used in any
# story", and Rasa re-adds the retrieval intent policy_faq when merging domain files.
unexpected=$(echo "$out" | grep -E "UserWarning|ERROR" \
  | grep -vE "is not used in any story or rule|duplicated intents have been found across multiple domain files: policy_faq" || true)
if [ -n "$unexpected" ]; then
  echo "$unexpected"
  status=1
fi

echo "-- rasa test core (bot/tests)"
mkdir -p bot/results
bot/.venv/bin/rasa test core --stories bot/tests --model "$MODEL" --out bot/results/core \
  --fail-on-prediction-errors --quiet >bot/results/core.log 2>&1 \
  || { grep -vE "Warning|warn|^\s*$" bot/results/core.log | tail -n 40; \
       cat bot/results/core/failed_test_stories.yml 2>/dev/null | head -n 80; status=1; }
exit $status
