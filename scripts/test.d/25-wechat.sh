#!/usr/bin/env bash
# WeChat Official Account channel against the simulated WeChat platform (tests/wechat_double):
# protocol, security mode, retries, customer-service sends, shared token (real Redis if up).
# A bot-wide runner should pass --ignore=tests/bot/channels so these run once.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
bot/.venv/bin/python -m pytest tests/bot/channels -q -p no:cacheprovider "$@"
