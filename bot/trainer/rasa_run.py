"""`rasa train` and `rasa test nlu` as scripts/train.sh and scripts/evaluate.sh run them, in
child processes (time-boxed), and the held-out summary `make evaluate` prints
(bot/scripts/nlu_report.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from trainer.config import BOT_DIR, REPO_DIR, Settings
from trainer.data import files_hash, yaml_files
from trainer.errors import TrainerError
from trainer.processes import run

sys.path.insert(0, str(BOT_DIR / "scripts"))
import nlu_report  # noqa: E402


def rasa_env(settings: Settings) -> dict[str, str]:
    """The environment of a rasa command: custom components importable (bot/ on the path),
    no telemetry, the shared Rasa cache, one TensorFlow pool per core pair."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "PYTHONPATH": str(BOT_DIR),
            "PYTHONDONTWRITEBYTECODE": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "RASA_CACHE_DIRECTORY": str(settings.rasa_cache_dir),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_INTRA_OP_PARALLELISM_THREADS": os.environ.get(
                "TF_INTRA_OP_PARALLELISM_THREADS", "2"
            ),
            "TF_INTER_OP_PARALLELISM_THREADS": os.environ.get(
                "TF_INTER_OP_PARALLELISM_THREADS", "1"
            ),
        }
    )
    return env


def rasa_argv(*args: str) -> list[str]:
    """`python -m rasa …` with the trainer's own interpreter (the bot environment)."""
    return [sys.executable, "-m", "rasa", *args]


def train(settings: Settings, data_dir: Path, out_dir: Path, name: str, log: Path) -> Path:
    """Train the NLU and dialogue model on `data_dir` + the dialogue data; the .tar.gz."""
    settings.rasa_cache_dir.mkdir(parents=True, exist_ok=True)
    argv = rasa_argv(
        "train",
        "--config",
        str(settings.config),
        "--domain",
        str(settings.domain),
        "--data",
        str(data_dir),
        str(settings.dialogue_data),
        "--out",
        str(out_dir),
        "--fixed-model-name",
        name,
    )
    # From the repository root: the config's paths (bot/jieba) are relative to it.
    run(argv, REPO_DIR, rasa_env(settings), log, settings.train_timeout, "训练")
    model = out_dir / f"{name}.tar.gz"
    if not model.is_file():
        raise TrainerError("训练没有产生模型文件")
    return model


def evaluate(settings: Settings, model: Path, results: Path, log: Path) -> dict[str, Any]:
    """Held-out figures of `model` with `make evaluate`'s definitions: intent accuracy and
    macro-F1, per-intent P/R/F1, entity P/R/F1 (each entity scored by its own extractor)."""
    argv = rasa_argv(
        "test",
        "nlu",
        "--nlu",
        str(settings.heldout_dir),
        "--model",
        str(model),
        "--out",
        str(results),
        "--domain",
        str(settings.domain),
        "--quiet",
        "--no-plot",
        "--no-errors",
    )
    run(argv, REPO_DIR, rasa_env(settings), log, settings.eval_timeout, "评估")
    summary = nlu_report.summarise(results)
    for key in ("confusion_matrix", "train_data_hash"):
        summary.pop(key, None)
    summary["entity_f1"] = summary["entities"]["f1"]
    summary["test_data_hash"] = files_hash(yaml_files(settings.heldout_dir), settings.heldout_dir)
    return summary
