#!/usr/bin/env bash
# The resident-side conversation suite (tests/conversations/cases/*.yml): api + action server +
# Rasa on free loopback ports, every case a new resident over the REST channel. Trains first only
# if the model is missing or out of date.
set -euo pipefail
cd "$(dirname "$0")/../.."
export RASA_TELEMETRY_ENABLED=false PYTHONDONTWRITEBYTECODE=1
bash scripts/train.sh
mkdir -p tests/artifacts
bot/.venv/bin/python -m pytest tests/conversations -q -p no:cacheprovider "$@"
