"""Summarise `rasa test nlu` results: intent accuracy and macro-F1, entity P/R/F1, per intent.

Writes bot/results/nlu_report.md (for people) and bot/results/nlu_summary.json (for the
threshold test). Entities are scored with the extractor that owns them: regexes for ID, phone,
petition and contract numbers, the learned extractor (CRF or DIET) for addresses and names.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REGEX_ENTITIES = ("id_number", "phone", "petition_number", "contract_number")
LEARNED_ENTITIES = ("address", "person_name")
# The learned extractor of the pipeline: the first of these whose report `rasa test` wrote.
LEARNED_EXTRACTORS = ("CharCRFEntityExtractor", "CRFEntityExtractor", "DIETClassifier")


def test_data_hash() -> str:
    """Hash of the held-out files, so a summary can tell which test set it scored."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "nlu_data" / "test").rglob("*.yml")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


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
        "confusion_matrix": str((results / "intent_confusion_matrix.png").relative_to(REPO)),
        "test_data_hash": test_data_hash(),
    }


def markdown(summary: dict[str, Any]) -> str:
    """The human report."""
    lines = [
        "# NLU report (held-out set nlu_data/test/)",
        "",
        f"- model: `{summary['model']}`",
        f"- intent accuracy: **{summary['intent_accuracy']:.3f}**",
        f"- intent macro-F1: **{summary['intent_macro_f1']:.3f}** (target 0.95, floor 0.90)",
        f"- entity precision / recall / F1: **{summary['entities']['precision']:.3f} / "
        f"{summary['entities']['recall']:.3f} / {summary['entities']['f1']:.3f}** "
        "(target F1 0.90, floor 0.85)",
    ]
    if summary.get("policy_faq_accuracy") is not None:
        lines.append(
            f"- policy_faq topic accuracy (ResponseSelector): {summary['policy_faq_accuracy']:.3f}"
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
    args = parser.parse_args()
    results = args.results.resolve()
    summary = summarise(results)
    summary["model"] = Path(args.model).name
    summary["seconds"] = args.seconds
    out = results.parent
    (out / "nlu_summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    (out / "nlu_report.md").write_text(markdown(summary), encoding="utf-8")
    entities = summary["entities"]
    print(
        f"intent accuracy {summary['intent_accuracy']:.3f}  macro-F1 "
        f"{summary['intent_macro_f1']:.3f}  entity P/R/F1 {entities['precision']:.3f}/"
        f"{entities['recall']:.3f}/{entities['f1']:.3f}  → {out / 'nlu_report.md'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
