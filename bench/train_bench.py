"""Training job benchmark: the trainer's job (bot/trainer) with the project's full config and
data on this machine, phase by phase.

    bot/.venv/bin/python bench/train_bench.py [--no-conversations] [--subset N] [--warm-cache]

The job runs as the consumer runs it (`trainer.job.train_candidate`), against a small HTTP
server playing the api's model endpoints (tests/bot/trainer/fake_api.py) that serves no
annotations and names the newest model of bot/models/ as the live one. Prints the training
time against the issue's 3-minute budget, the held-out evaluation time (candidate and live
model), the conversation suite's time in the sandbox (both models), the upload, and the
figures of both models (trained on the same data, they should agree). The Rasa cache is a
fresh one unless --warm-cache: every component is trained, as after new annotations.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bot"))
sys.path.insert(0, str(ROOT / "tests" / "bot" / "trainer"))

from fake_api import TOKEN, FakeApi  # noqa: E402
from trainer import config, job  # noqa: E402

TRAIN_BUDGET_SECONDS = 180


def newest_model() -> Path | None:
    """The model `rasa run --model bot/models` would load."""
    models = sorted((ROOT / "bot" / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1] if models else None


def main() -> int:
    """Run one job and print its phases."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-conversations", action="store_true", help="skip the suite")
    parser.add_argument("--subset", type=int, default=0, help="examples per intent (0: all)")
    parser.add_argument(
        "--warm-cache", action="store_true", help="use the shared Rasa cache (make train's)"
    )
    args = parser.parse_args()
    live = newest_model()
    if live is None:
        print("no model in bot/models/: run make train first", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.WARNING)
    api = FakeApi(live_model=live, live_fingerprint=live.name).start()
    with tempfile.TemporaryDirectory(prefix="fangben-train-bench-") as work:
        env = {
            **os.environ,
            "API_URL": api.url,
            "SERVICE_TOKEN": TOKEN,
            "MODEL_CANDIDATES_DIR": work,
            "TRAINER_CONVERSATIONS": "0" if args.no_conversations else "1",
            "TRAINER_DATA_SUBSET": str(args.subset),
            "TRAINER_ATTEMPTS": "1",
        }
        if not args.warm_cache:
            # A cold Rasa cache: every component is trained, as after new annotations.
            env["RASA_CACHE_DIRECTORY"] = str(Path(work) / "rasa-cache")
        for key in ("TRAINER_CONFIG", "TRAINER_CASES_DIR", "TRAINER_NLU_DIR"):
            env.pop(key, None)
        settings = config.load(env)
        body = job.train_candidate("bench", settings)
    api.stop()
    if body["status"] != "candidate":
        print(f"the job failed: {body.get('error')}", file=sys.stderr)
        return 1
    metrics = body["metrics"]
    timings = metrics["timings"]
    data = metrics["data"]
    verdict = "within" if timings["train_s"] <= TRAIN_BUDGET_SECONDS else "OVER"
    print(
        f"config {metrics['config']}, {data['examples']} examples of {data['intents']} intents, "
        f"model {metrics['model_bytes'] / 1e6:.1f} MB"
    )
    print(
        f"training (rasa train, NLU + dialogue): {timings['train_s']:.0f} s "
        f"({verdict} the {TRAIN_BUDGET_SECONDS} s budget)"
    )
    print(f"held-out evaluation, candidate + live model: {timings['eval_s']:.0f} s")
    if "conversations_s" in timings:
        print(
            f"conversation suite in the sandbox, candidate + live model: "
            f"{timings['conversations_s']:.0f} s"
        )
    print(f"upload: {timings['upload_s']:.1f} s; whole job: {timings['total_s']:.0f} s")
    live_metrics = metrics.get("live") or {}
    for name, figures in (("candidate", metrics), ("live", live_metrics)):
        if not figures:
            continue
        line = (
            f"{name:9} intent macro-F1 {figures['intent_macro_f1']:.3f}, "
            f"entity F1 {figures['entity_f1']:.3f}"
        )
        conversations = figures.get("conversations")
        if conversations:
            line += f", conversations {conversations['passed']}/{conversations['total']}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
