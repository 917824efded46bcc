"""Summarise `rasa test nlu` results: intent accuracy and macro-F1, entity P/R/F1, per intent,
side by side with the baseline (bot/scripts/baseline.py, retrained on the same training data).

Writes bot/results/nlu_report.md (for people) and bot/results/nlu_summary.json (for the
threshold test and bench/nlu_bench.py). Entities are scored with the extractor that owns them:
regexes for ID, phone, petition and contract numbers, the learned extractor (CRF or DIET) for
addresses and names.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline  # noqa: E402

# Floors of tests/bot/test_nlu_thresholds.py (besides "at least the baseline's").
MACRO_F1_FLOOR = 0.93
ENTITY_F1_FLOOR = 0.92
MACRO_F1_TARGET = 0.95
REGEX_ENTITIES = ("id_number", "phone", "petition_number", "contract_number")
LEARNED_ENTITIES = ("address", "person_name")
# The learned extractor of the pipeline: the first of these whose report `rasa test` wrote.
LEARNED_EXTRACTORS = ("CharCRFEntityExtractor", "CRFEntityExtractor", "DIETClassifier")


def test_data_hash() -> str:
    """Hash of the held-out files, so a summary can tell which test set it scored."""
    return baseline.files_hash(baseline.test_files())


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def entity_scores(results: Path) -> dict[str, Any]:
    """Per-entity rows from the owning extractor's report, and their micro/macro averages."""
    learned = next(
        (n for n in LEARNED_EXTRACTORS if (results / f"{n}_report.json").exists()),
        LEARNED_EXTRACTORS[-1],
    )
    reports = {
        "RegexEntityExtractor": _load(results / "RegexEntityExtractor_report.json"),
        learned: _load(results / f"{learned}_report.json"),
    }
    rows: dict[str, dict[str, float]] = {}
    tp = fp = fn = 0.0
    for extractor, names in (
        ("RegexEntityExtractor", REGEX_ENTITIES),
        (learned, LEARNED_ENTITIES),
    ):
        for name in names:
            row = reports[extractor].get(name)
            if not row or not row.get("support"):
                continue
            support = float(row["support"])
            hits = row["recall"] * support
            predicted = hits / row["precision"] if row["precision"] else 0.0
            tp, fn, fp = tp + hits, fn + support - hits, fp + max(predicted - hits, 0.0)
            rows[name] = {
                "precision": row["precision"],
                "recall": row["recall"],
                "f1": row["f1-score"],
                "support": int(support),
                "extractor": extractor,
            }
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    macro = sum(r["f1"] for r in rows.values()) / len(rows) if rows else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "macro_f1": macro,
        "per_entity": rows,
    }


def summarise(results: Path) -> dict[str, Any]:
    """The figures the report and the threshold test use."""
    intents = _load(results / "intent_report.json")
    per_intent = {
        name: {
            "precision": row["precision"],
            "recall": row["recall"],
            "f1": row["f1-score"],
            "support": int(row["support"]),
        }
        for name, row in intents.items()
        if isinstance(row, dict) and name not in ("macro avg", "weighted avg", "micro avg")
    }
    selector = _load(results / "response_selection_report.json")
    return {
        "intent_accuracy": intents.get("accuracy", 0.0),
        "intent_macro_f1": intents.get("macro avg", {}).get("f1-score", 0.0),
        "intent_weighted_f1": intents.get("weighted avg", {}).get("f1-score", 0.0),
        "per_intent": per_intent,
        "entities": entity_scores(results),
        "policy_faq_accuracy": selector.get("accuracy"),
        "n_test": sum(row["support"] for row in per_intent.values()),
        "confusion_matrix": _shown(results / "intent_confusion_matrix.png"),
        "test_data_hash": test_data_hash(),
        "train_data_hash": baseline.files_hash(baseline.train_files()),
    }


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def side_by_side(summary: dict[str, Any]) -> list[str]:
    """The model's and the baseline's headline figures, one line each, aligned."""
    base = summary.get("baseline") or {}
    entities = summary["entities"]

    def fmt(value: Any) -> str:
        return f"{value:.3f}" if isinstance(value, float) else "  –  "

    lines = [
        f"{'held-out (' + str(summary.get('n_test', '?')) + ' examples)':32} {'model':>7} "
        f"{'baseline':>9}",
        f"{'intent accuracy':32} {fmt(summary['intent_accuracy']):>7} "
        f"{fmt(base.get('intent_accuracy')):>9}",
        f"{'intent macro-F1':32} {fmt(summary['intent_macro_f1']):>7} "
        f"{fmt(base.get('intent_macro_f1')):>9}",
        f"{'entity precision/recall/F1':32} {fmt(entities['precision'])}/"
        f"{fmt(entities['recall'])}/{fmt(entities['f1'])}",
    ]
    if summary.get("policy_faq_accuracy") is not None:
        lines.append(
            f"{'policy_faq topic accuracy':32} {fmt(float(summary['policy_faq_accuracy'])):>7}"
        )
    return lines


def markdown(summary: dict[str, Any]) -> str:
    """The human report."""
    base = summary.get("baseline") or {}
    lines = [
        "# NLU report (held-out set nlu_data/test/)",
        "",
        f"- model: `{summary['model']}`; held-out examples: {summary.get('n_test')}",
        f"- intent accuracy: **{summary['intent_accuracy']:.3f}** "
        f"(baseline {base.get('intent_accuracy', float('nan')):.3f})",
        f"- intent macro-F1: **{summary['intent_macro_f1']:.3f}** "
        f"(baseline {base.get('intent_macro_f1', float('nan')):.3f}; target {MACRO_F1_TARGET}, "
        f"floor {MACRO_F1_FLOOR} and at least the baseline's)",
        f"- entity precision / recall / F1: **{summary['entities']['precision']:.3f} / "
        f"{summary['entities']['recall']:.3f} / {summary['entities']['f1']:.3f}** "
        f"(floor F1 {ENTITY_F1_FLOOR})",
        "- baseline: char_wb 1-3 TF-IDF + logistic regression (bot/scripts/baseline.py), "
        "trained on the same training part",
    ]
    if summary.get("policy_faq_accuracy") is not None:
        lines.append(
            f"- policy_faq topic accuracy (response selector): {summary['policy_faq_accuracy']:.3f}"
        )
    lines += [
        f"- confusion matrix: `{summary['confusion_matrix']}`",
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for name, row in sorted(summary["per_intent"].items()):
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['f1']:.3f} | {row['support']} |"
        )
    lines += [
        "",
        "| entity | extractor | precision | recall | F1 | support |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in sorted(summary["entities"]["per_entity"].items()):
        lines.append(
            f"| {name} | {row['extractor']} | {row['precision']:.3f} | "
            f"{row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write the report and the summary; print the headline figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=REPO / "bot" / "results" / "nlu")
    parser.add_argument("--model", default="")
    parser.add_argument("--seconds", type=int, default=0)
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    args = parser.parse_args()
    results = args.results.resolve()
    summary = summarise(results)
    summary["model"] = Path(args.model).name
    summary["seconds"] = args.seconds
    if not args.no_baseline:
        summary["baseline"] = baseline.scores()
    out = results.parent
    (out / "nlu_summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (out / "nlu_report.md").write_text(markdown(summary), encoding="utf-8")
    print("\n".join(side_by_side(summary)))
    print(f"→ {out / 'nlu_report.md'}, {out / 'nlu_summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
