#!/usr/bin/env bash
# End to end: api + action server + Rasa on free loopback ports, residents' conversations over
# the REST channel (tests/e2e), and the live privacy checks that read the tracker store while the
# bot talks (tests/bot/test_privacy_live.py; a bot-wide runner should --ignore it so it runs
# once). Trains first only if the model is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
if [ -f scripts/train.sh ]; then
  bash scripts/train.sh
fi
bot/.venv/bin/python -m pytest tests/e2e tests/bot/test_privacy_live.py -q -p no:cacheprovider "$@"
