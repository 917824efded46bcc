"""The NLU model scores above the floors on the held-out set nlu_data/test/ (make evaluate).

Floors: intent accuracy and macro-F1 at least the baseline's (bot/scripts/baseline.py: char_wb
TF-IDF + logistic regression, retrained by the evaluation on the same training data), intent
macro-F1 0.93 whatever the baseline scores, entity F1 0.92. The evaluation is rerun when the
model, the training data or the held-out set changed since the last summary.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO

sys.path.insert(0, str(REPO / "bot" / "scripts"))
import baseline  # noqa: E402
from nlu_report import ENTITY_F1_FLOOR, MACRO_F1_FLOOR  # noqa: E402
from nlu_report import test_data_hash as held_out_hash  # noqa: E402

SUMMARY = REPO / "bot" / "results" / "nlu_summary.json"


def _stale(summary: dict, model: str) -> bool:
    """Whether a summary was made for another model, training part or held-out set."""
    return (
        summary.get("model") != model
        or summary.get("test_data_hash") != held_out_hash()
        or summary.get("train_data_hash") != baseline.files_hash(baseline.train_files())
        or (summary.get("baseline") or {}).get("test_data_hash") != held_out_hash()
    )


@pytest.fixture(scope="module")
def summary() -> dict:
    models = sorted((REPO / "bot" / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    assert models, "no trained model: run scripts/train.sh (make train) first"
    current = json.loads(SUMMARY.read_text(encoding="utf-8")) if SUMMARY.exists() else {}
    if _stale(current, models[-1].name):
        subprocess.run(["bash", str(REPO / "scripts" / "evaluate.sh")], check=True, cwd=REPO)
        current = json.loads(SUMMARY.read_text(encoding="utf-8"))
    assert not _stale(current, models[-1].name), "the evaluation did not score the current data"
    return current


@pytest.mark.slow
def test_the_whole_held_out_set_was_scored(summary: dict) -> None:
    n_test = len(baseline.intent_examples(baseline.test_files())[0])
    assert summary["n_test"] == n_test == summary["baseline"]["n_test"]
    assert summary["baseline"]["n_train"] > 0


@pytest.mark.slow
def test_intent_accuracy_at_least_the_baseline(summary: dict) -> None:
    assert summary["intent_accuracy"] >= summary["baseline"]["intent_accuracy"], (
        summary["intent_accuracy"],
        summary["baseline"],
    )


@pytest.mark.slow
def test_intent_macro_f1_at_least_the_baseline_and_the_floor(summary: dict) -> None:
    assert summary["intent_macro_f1"] >= summary["baseline"]["intent_macro_f1"], (
        summary["intent_macro_f1"],
        summary["baseline"],
    )
    assert summary["intent_macro_f1"] >= MACRO_F1_FLOOR, summary["per_intent"]


@pytest.mark.slow
def test_entity_f1_above_floor(summary: dict) -> None:
    assert summary["entities"]["f1"] >= ENTITY_F1_FLOOR, summary["entities"]["per_entity"]
    assert {"address", "person_name", "id_number", "phone"} <= set(
        summary["entities"]["per_entity"]
    )


@pytest.mark.slow
def test_every_contract_intent_was_scored(summary: dict) -> None:
    expected = {
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "bot_challenge",
        "ask_certificate_status",
        "inform",
        "ask_next_steps",
        "ask_materials",
        "ask_where_to_apply",
        "policy_faq",
        "complain",
        "request_human",
        "check_petition",
        "out_of_scope",
    }
    assert expected <= set(summary["per_intent"])
