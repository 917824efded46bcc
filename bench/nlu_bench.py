"""NLU benchmark: training time of the model and its held-out figures next to the baseline's.

    bot/.venv/bin/python bench/nlu_bench.py

Training time and model size come from the record scripts/train.sh writes next to the newest
model (bot/models/<hash>.json). The held-out figures (intent accuracy and macro-F1 of the model
and of the baseline, entity P/R/F1, policy_faq topic accuracy) come from
bot/results/nlu_summary.json, made afresh by scripts/evaluate.sh when it does not belong to the
current model, training data and held-out set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bot" / "scripts"))

import baseline  # noqa: E402
from nlu_report import side_by_side, test_data_hash  # noqa: E402

SUMMARY = ROOT / "bot" / "results" / "nlu_summary.json"
TRAIN_BUDGET_SECONDS = 180


def newest_model() -> Path | None:
    """The model `rasa run --model bot/models` would load."""
    models = sorted((ROOT / "bot" / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def summary_for(model: Path) -> dict:
    """The held-out summary of `model`, evaluating it when the stored one is stale."""
    current = json.loads(SUMMARY.read_text(encoding="utf-8")) if SUMMARY.exists() else {}
    fresh = (
        current.get("model") == model.name
        and current.get("test_data_hash") == test_data_hash()
        and current.get("train_data_hash") == baseline.files_hash(baseline.train_files())
        and "baseline" in current
    )
    if not fresh:
        subprocess.run(["bash", str(ROOT / "scripts" / "evaluate.sh")], check=True, cwd=ROOT)
        current = json.loads(SUMMARY.read_text(encoding="utf-8"))
    return current


def main() -> int:
    """Print training time, model size and the side-by-side held-out figures."""
    model = newest_model()
    if model is None:
        print("no model in bot/models/: run make train first", file=sys.stderr)
        return 1
    record_path = model.with_name(model.name.removesuffix(".tar.gz") + ".json")
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else {}
    seconds = record.get("train_seconds")
    size = record.get("model_bytes", model.stat().st_size)
    if seconds is None:
        print(f"model {model.name}: training time unknown (no {record_path.name})")
    else:
        verdict = "within" if seconds <= TRAIN_BUDGET_SECONDS else "OVER"
        print(
            f"model {model.name}: trained in {seconds} s ({verdict} the "
            f"{TRAIN_BUDGET_SECONDS} s budget, NLU + dialogue), {size / 1e6:.1f} MB"
        )
    summary = summary_for(model)
    print("\n".join(side_by_side(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
