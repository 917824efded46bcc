"""What a model's metrics say, and whether a candidate may replace the live model.

The metrics JSON the trainer sends (`POST /api/v1/models/{id}/result`) is the held-out report of
`bot/scripts/nlu_report.py` (bot/results/nlu_summary.json) plus the conversation suite:

    {"intent_macro_f1": 0.956,
     "per_intent": {"greet": {"f1": 0.96, ...}, ...},      (or {"greet": 0.96, ...})
     "entities": {"f1": 0.991, ...},                        (or "entity_f1": 0.991)
     "conversations": {"passed": 13, "total": 14, "failed": ["case id", ...]},
     ...}                                                   (other keys are kept as they are)

A candidate is refused when the macro-F1 drops by more than MODEL_MAX_MACRO_F1_DROP, any intent's
F1 by more than MODEL_MAX_INTENT_F1_DROP, or it fails conversation cases the live model passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.modelhub.config import settings

# Float noise must not turn an equal score into a "drop".
EPSILON = 1e-9


@dataclass(frozen=True)
class Scores:
    """The figures the checks and the registry page use, read from a metrics JSON."""

    macro_f1: float | None = None
    intent_f1: dict[str, float] = field(default_factory=dict)
    entity_f1: float | None = None
    conversations_passed: int | None = None
    conversations_total: int | None = None
    conversations_failed: tuple[str, ...] | None = None

    @property
    def has_nlu(self) -> bool:
        """True when held-out figures are present."""
        return self.macro_f1 is not None

    @property
    def has_conversations(self) -> bool:
        """True when the conversation suite ran."""
        return self.conversations_total is not None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def scores(metrics: dict[str, Any] | None) -> Scores:
    """Read the figures out of a metrics JSON (missing parts stay None / empty)."""
    if not isinstance(metrics, dict):
        return Scores()
    per_intent = metrics.get("per_intent") or metrics.get("intent_f1") or {}
    intent_f1: dict[str, float] = {}
    if isinstance(per_intent, dict):
        for name, value in per_intent.items():
            f1 = _number(value.get("f1")) if isinstance(value, dict) else _number(value)
            if f1 is not None:
                intent_f1[str(name)] = f1
    entities = metrics.get("entities")
    entity_f1 = _number(metrics.get("entity_f1"))
    if entity_f1 is None and isinstance(entities, dict):
        entity_f1 = _number(entities.get("f1"))
    conv = metrics.get("conversations")
    passed = total = None
    failed: tuple[str, ...] | None = None
    if isinstance(conv, dict) and _number(conv.get("total")) is not None:
        total = int(conv["total"])
        failed = tuple(str(c) for c in conv.get("failed") or [])
        passed_value = _number(conv.get("passed"))
        passed = int(passed_value) if passed_value is not None else total - len(failed)
    return Scores(
        macro_f1=_number(metrics.get("intent_macro_f1")),
        intent_f1=intent_f1,
        entity_f1=entity_f1,
        conversations_passed=passed,
        conversations_total=total,
        conversations_failed=failed,
    )


@dataclass(frozen=True)
class Verdict:
    """The checks of a candidate against the live model: refusals block a promotion, notes
    say what could not be compared; `intent_drops` is every intent whose F1 fell."""

    refusals: tuple[str, ...]
    notes: tuple[str, ...]
    intent_drops: dict[str, float]
    regressed_cases: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when nothing blocks the promotion."""
        return not self.refusals

    @property
    def refusal_text(self) -> str | None:
        """The refusals as one Chinese text (None when there are none)."""
        return "\n".join(self.refusals) or None


def intent_drops(candidate: Scores, live: Scores) -> dict[str, float]:
    """Per intent of the live model: how much the candidate's F1 is lower (only drops > 0; an
    intent the candidate no longer knows counts as F1 0)."""
    drops = {}
    for name, live_f1 in live.intent_f1.items():
        drop = live_f1 - candidate.intent_f1.get(name, 0.0)
        if drop > EPSILON:
            drops[name] = drop
    return dict(sorted(drops.items(), key=lambda kv: -kv[1]))


def judge(
    candidate_metrics: dict[str, Any] | None,
    live_metrics: dict[str, Any] | None,
    *,
    has_live: bool = True,
) -> Verdict:
    """May a candidate with these metrics replace the live model with those?"""
    cand, live = scores(candidate_metrics), scores(live_metrics)
    max_macro = settings.model_max_macro_f1_drop
    max_intent = settings.model_max_intent_f1_drop
    refusals: list[str] = []
    notes: list[str] = []
    drops: dict[str, float] = {}
    regressed: tuple[str, ...] = ()
    if not cand.has_nlu:
        refusals.append("候选模型没有留出集评估结果，无法判断它是否比现网模型差。")
    if not has_live:
        notes.append("目前没有现网模型，无从比较。")
        return Verdict(tuple(refusals), tuple(notes), drops, regressed)
    if not live.has_nlu:
        notes.append("现网模型没有留出集评估结果，F1 未作比较。")
    elif cand.has_nlu:
        assert cand.macro_f1 is not None and live.macro_f1 is not None
        drop = live.macro_f1 - cand.macro_f1
        if drop > max_macro + EPSILON:
            refusals.append(
                f"意图宏平均 F1 从 {live.macro_f1:.3f} 降到 {cand.macro_f1:.3f}"
                f"（下降 {drop:.3f}，最多允许下降 {max_macro:.3f}）。"
            )
        drops = intent_drops(cand, live)
        too_much = {name: d for name, d in drops.items() if d > max_intent + EPSILON}
        if too_much:
            listed = "、".join(
                f"{name}（{live.intent_f1[name]:.3f} → {cand.intent_f1.get(name, 0.0):.3f}）"
                for name in too_much
            )
            refusals.append(f"{len(too_much)} 个意图的 F1 下降超过 {max_intent:.3f}：{listed}。")
    if not live.has_conversations:
        notes.append("现网模型没有对话测试结果，对话测试未作比较。")
    elif not cand.has_conversations:
        refusals.append("候选模型没有对话测试结果，无法确认现网模型通过的对话它也能通过。")
    else:
        live_failed = set(live.conversations_failed or ())
        regressed = tuple(c for c in cand.conversations_failed or () if c not in live_failed)
        if regressed:
            refusals.append(
                f"{len(regressed)} 个对话测试现网模型通过、候选模型未通过：{'、'.join(regressed)}。"
            )
    return Verdict(tuple(refusals), tuple(notes), drops, regressed)
