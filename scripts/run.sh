#!/usr/bin/env bash
# `make run`: the whole helpdesk on embedded defaults (SQLite, in-memory Rasa stores, nothing
# else), every port on 127.0.0.1. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export RASA_TELEMETRY_ENABLED=false SANIC_HOST=127.0.0.1
API_PORT=${API_PORT:-8000} RASA_PORT=${RASA_PORT:-5005} ACTIONS_PORT=${ACTIONS_PORT:-5055}
export API_URL="http://127.0.0.1:${API_PORT}" RASA_URL="http://127.0.0.1:${RASA_PORT}"
# The api, the action server, Rasa's model pull and the trainer share one token (the api's
# development default unless you set one).
export SERVICE_TOKEN="${SERVICE_TOKEN:-dev-only-service-token-change-me}"
LOG_DIR="$ROOT/api/data/logs"
mkdir -p "$LOG_DIR"

for port in "$API_PORT" "$RASA_PORT" "$ACTIONS_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "端口 $port 已被占用：请先停止占用它的程序（或设置 API_PORT/RASA_PORT/ACTIONS_PORT）。" >&2
    exit 1
  fi
done

echo "== 训练模型（数据未变则跳过）"
bash scripts/train.sh
MODEL=$(ls -t bot/models/*.tar.gz | head -n 1)

echo "== 数据库迁移、示例台账、演示账号"
(cd api && .venv/bin/alembic upgrade head >/dev/null)
(cd api && .venv/bin/python -m app.ledger.cli load-demo)
(cd api && .venv/bin/python -m app.staff.cli seed-demo)
echo "== 模型登记（登记表没有现网模型时，刚才的模型即为现网模型）"
(cd api && .venv/bin/python -m app.modelhub.cli register-live "$ROOT/$MODEL")

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "== 正在停止…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_for() {  # url name seconds
  for _ in $(seq "$3"); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 1
  done
  echo "$2 没有启动，日志见 $LOG_DIR" >&2
  return 1
}

(cd bot && exec .venv/bin/rasa run actions --actions actions --port "$ACTIONS_PORT" \
  >"$LOG_DIR/actions.log" 2>&1) &
pids+=($!)
(cd api && exec .venv/bin/uvicorn app.main:app --host 127.0.0.1 --port "$API_PORT" \
  --no-access-log --no-proxy-headers >"$LOG_DIR/api.log" 2>&1) &
pids+=($!)
# Background jobs (notifications to residents): the queue is api/data/jobs.db (JOB_QUEUE_URL).
(cd api && exec .venv/bin/python -m app.worker >"$LOG_DIR/worker.log" 2>&1) &
pids+=($!)
# The training job (控制台「模型」→ 训练新模型): the same queue file, queue <name>-training.
if [ -f bot/trainer/__main__.py ]; then
  (cd bot && exec .venv/bin/python -m trainer >"$LOG_DIR/trainer.log" 2>&1) &
  pids+=($!)
fi
# Rasa loads the live model from the api's model server (bot/endpoints.yml `models:`) before it
# listens, and switches to a promoted one without a restart: the api answers first.
wait_for "http://127.0.0.1:${API_PORT}/healthz" "api" 60
(cd bot && exec .venv/bin/rasa run -i 127.0.0.1 --port "$RASA_PORT" \
  --credentials credentials.yml --endpoints endpoints.yml >"$LOG_DIR/rasa.log" 2>&1) &
pids+=($!)

wait_for "http://127.0.0.1:${ACTIONS_PORT}/health" "action server" 120
wait_for "http://127.0.0.1:${RASA_PORT}/" "Rasa" 300

cat <<MSG

房本助手已启动（Ctrl-C 全部停止）：
  网页聊天      http://127.0.0.1:${API_PORT}/chat
  工作人员后台  http://127.0.0.1:${API_PORT}/console
  API 文档      http://127.0.0.1:${API_PORT}/docs
  健康检查      http://127.0.0.1:${API_PORT}/healthz
  Rasa          http://127.0.0.1:${RASA_PORT}   (REST: /webhooks/rest/webhook, 微信: /webhooks/wechat/webhook)
  动作服务器    http://127.0.0.1:${ACTIONS_PORT}
  后台任务      通知发送（日志 worker.log）、模型训练（日志 trainer.log）
  模型          Rasa 每 10 秒向 api 取现网模型，上线/回滚无需重启（工作台「模型」）
  日志          $LOG_DIR
MSG
wait -n "${pids[@]}"
echo "有一个服务退出了，日志见 $LOG_DIR" >&2
