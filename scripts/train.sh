#!/usr/bin/env bash
# Train the Rasa model only when its inputs changed. The model is keyed by a hash of the
# training part of nlu_data/ (never nlu_data/test/), bot/config.yml, the custom NLU components
# (bot/components/*.py), bot/domain, bot/data, the jieba dictionary and policies/faq.yml.
# Order: bot/models/<hash>.tar.gz → the cache outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/fangben/models) → train and store in the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
# bot/config.yml names custom components as `components.*` (bot/components/), and a trained
# model refers to them by that name. Servers run with bot/ as working directory; for anything
# else that loads a model with the bot env (`rasa test core` from the repo root, scripts), a
# .pth file appends bot/ to the env's sys.path (after site-packages: nothing is shadowed).
export PYTHONPATH="bot${PYTHONPATH:+:$PYTHONPATH}"
BOT_PY=bot/.venv/bin/python
SITE=$($BOT_PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ "$(cat "$SITE/fangben-bot.pth" 2>/dev/null)" != "$PWD/bot" ]; then
  printf '%s\n' "$PWD/bot" >"$SITE/fangben-bot.pth"
fi
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/fangben"
mkdir -p bot/models "$CACHE_DIR/models"

# Generated inputs first (they are part of the hash).
$BOT_PY bot/scripts/gen_jieba_dict.py
$BOT_PY bot/scripts/gen_faq_responses.py

mapfile -t NLU_FILES < <(find nlu_data -type f \( -name '*.yml' -o -name '*.yaml' \) \
  -not -path 'nlu_data/test/*' | LC_ALL=C sort)
mapfile -t HASHED < <( (printf '%s\n' "${NLU_FILES[@]}"; \
  find bot/config.yml bot/domain bot/data bot/jieba policies/faq.yml -type f; \
  find bot/components -type f -name '*.py') | LC_ALL=C sort -u)
HASH=$(for f in "${HASHED[@]}"; do printf '%s\0' "$f"; sha256sum <"$f"; done | sha256sum | cut -c1-16)
MODEL="bot/models/$HASH.tar.gz"

if [ -f "$MODEL" ]; then
  touch "$MODEL"   # the newest model is the one `rasa run --model bot/models` loads
  echo "模型已是最新：$MODEL"
  exit 0
fi
if [ -f "$CACHE_DIR/models/$HASH.tar.gz" ]; then
  cp "$CACHE_DIR/models/$HASH.tar.gz" "$MODEL"
  [ -f "$CACHE_DIR/models/$HASH.json" ] && cp "$CACHE_DIR/models/$HASH.json" "bot/models/$HASH.json"
  touch "$MODEL"
  echo "从缓存取得模型：$MODEL"
  exit 0
fi

echo "训练模型 $HASH（${#NLU_FILES[@]} 个 NLU 文件）…"
export RASA_CACHE_DIRECTORY="$CACHE_DIR/rasa-cache"
# Two shared cores: one TensorFlow thread per pool avoids oversubscription.
export TF_INTRA_OP_PARALLELISM_THREADS=${TF_INTRA_OP_PARALLELISM_THREADS:-2} TF_INTER_OP_PARALLELISM_THREADS=${TF_INTER_OP_PARALLELISM_THREADS:-1}
start=$(date +%s)
bot/.venv/bin/rasa train --config bot/config.yml --domain bot/domain \
  --data "${NLU_FILES[@]}" bot/data --out bot/models --fixed-model-name "$HASH"
seconds=$(( $(date +%s) - start ))
bytes=$(stat -c %s "$MODEL")
printf '{"hash": "%s", "train_seconds": %d, "model_bytes": %d}\n' "$HASH" "$seconds" "$bytes" \
  >"bot/models/$HASH.json"
cp "$MODEL" "bot/models/$HASH.json" "$CACHE_DIR/models/"
# Keep the three newest models in the clone.
ls -t bot/models/*.tar.gz | tail -n +4 | while read -r old; do rm -f "$old" "${old%.tar.gz}.json"; done
echo "训练完成：$MODEL，用时 ${seconds} 秒，$(( bytes / 1024 / 1024 )) MB"
