#!/usr/bin/env bash
# End to end: api + action server + Rasa on free loopback ports, residents' conversations over
# the REST channel (tests/e2e, slow). The live privacy checks (tests/bot/test_privacy_live.py)
# start their own stack and run with the bot tests in 20-bot.sh. Trains first only if the model
# is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
if [ -f scripts/train.sh ]; then
  bash scripts/train.sh
fi
bot/.venv/bin/python -m pytest tests/e2e -q -p no:cacheprovider "$@"
