"""Custom Rasa NLU components of 房本助手 (referenced from bot/config.yml as `components.*`).

Rasa imports them by module path, so `bot/` must be on `sys.path`: the servers run with `bot/`
as their working directory, scripts/train.sh and scripts/evaluate.sh set `PYTHONPATH=bot`.
"""
