"""The baseline the NLU model must beat on the held-out set nlu_data/test/.

scikit-learn `TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)` +
`LogisticRegression(C=10, max_iter=2000)`, trained on every nlu_data/ file outside
nlu_data/test/, labels at intent level (policy_faq/* examples count as `policy_faq`, as Rasa's
intent evaluation does); the text as typed, no normalisation.

    bot/.venv/bin/python bot/scripts/baseline.py [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NLU_DIR = REPO / "nlu_data"
TEST_DIR = NLU_DIR / "test"


def train_files() -> list[Path]:
    """The training part: every YAML file of nlu_data/ outside nlu_data/test/."""
    return sorted(
        p
        for p in NLU_DIR.rglob("*")
        if p.suffix in (".yml", ".yaml") and p.is_file() and TEST_DIR not in p.parents
    )


def test_files() -> list[Path]:
    """The held-out set."""
    return sorted(p for p in TEST_DIR.rglob("*") if p.suffix in (".yml", ".yaml"))


def files_hash(paths: list[Path]) -> str:
    """Hash of file names and contents (which data a figure was computed on)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def intent_examples(paths: list[Path]) -> tuple[list[str], list[str]]:
    """(texts, intents) of the NLU examples in `paths`; retrieval intents at intent level."""
    from rasa.shared.nlu.training_data.loading import load_data
    from rasa.shared.nlu.training_data.training_data import TrainingData

    logging.getLogger("rasa").setLevel(logging.ERROR)
    data = TrainingData().merge(*(load_data(str(p)) for p in paths))
    examples = [m for m in data.intent_examples if m.get("text") and m.get("intent")]
    return [m.get("text") for m in examples], [m.get("intent") for m in examples]


def scores() -> dict[str, Any]:
    """Train the baseline on the training part and score it on the held-out set."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline

    train, test = train_files(), test_files()
    x_train, y_train = intent_examples(train)
    x_test, y_test = intent_examples(test)
    model = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
        LogisticRegression(C=10, max_iter=2000),
    )
    model.fit(x_train, y_train)
    predicted = list(model.predict(x_test))
    return {
        "intent_accuracy": float(accuracy_score(y_test, predicted)),
        "intent_macro_f1": float(f1_score(y_test, predicted, average="macro")),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "train_data_hash": files_hash(train),
        "test_data_hash": files_hash(test),
    }


def main() -> int:
    """Print the baseline's held-out intent accuracy and macro-F1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    result = scores()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"baseline (char_wb 1-3 TF-IDF + LR, {result['n_train']} training examples): "
            f"held-out intent accuracy {result['intent_accuracy']:.3f}  "
            f"macro-F1 {result['intent_macro_f1']:.3f}  ({result['n_test']} examples)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
