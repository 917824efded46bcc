"""The promotion checks on metrics alone: macro-F1 and per-intent drops at and past their
limits, conversation cases the live model passes, what cannot be compared, the shapes read."""

from __future__ import annotations

import pytest
from modelhub.hubkit import INTENTS, metrics

from app.modelhub import checks
from app.modelhub.config import settings

LIVE = metrics(macro=0.950, failed=("faq-2",))


def test_equal_or_better_candidate_passes():
    """The same figures, or better ones, pass without a note."""
    assert checks.judge(LIVE, LIVE).passed
    better = metrics(macro=0.97, per_intent=dict.fromkeys(INTENTS, 0.97))
    v = checks.judge(better, LIVE)
    assert v.passed and v.notes == () and v.intent_drops == {}


def test_macro_f1_drop_past_the_limit_is_refused_in_chinese():
    """0.950 → 0.940 drops 0.010 > 0.005: refused, the figures named."""
    worse = metrics(macro=0.940, per_intent=dict.fromkeys(INTENTS, 0.95))
    v = checks.judge(worse, LIVE)
    assert not v.passed
    assert v.refusals == ("意图宏平均 F1 从 0.950 降到 0.940（下降 0.010，最多允许下降 0.005）。",)


def test_macro_f1_drop_at_the_limit_passes():
    """A drop of exactly MODEL_MAX_MACRO_F1_DROP is allowed (float noise included)."""
    at_limit = metrics(macro=0.950 - 0.005, per_intent=dict.fromkeys(INTENTS, 0.95))
    assert checks.judge(at_limit, LIVE).passed


def test_one_intent_dropping_too_much_is_refused_even_when_macro_holds():
    """complain 0.950 → 0.920 (−0.030 > 0.02) refuses; greet −0.01 is listed but allowed."""
    per_intent = dict.fromkeys(INTENTS, 0.95) | {"complain": 0.92, "greet": 0.94}
    v = checks.judge(metrics(macro=0.950, per_intent=per_intent), LIVE)
    assert not v.passed
    assert v.refusals == ("1 个意图的 F1 下降超过 0.020：complain（0.950 → 0.920）。",)
    assert v.intent_drops == pytest.approx({"complain": 0.03, "greet": 0.01})


def test_an_intent_the_candidate_lost_counts_as_f1_zero():
    """An intent the live model knows and the candidate lacks is a drop to 0."""
    per_intent = {name: 0.95 for name in INTENTS if name != "ask_materials"}
    v = checks.judge(metrics(macro=0.95, per_intent=per_intent), LIVE)
    assert "ask_materials（0.950 → 0.000）" in v.refusals[0]


def test_the_limits_are_settings(monkeypatch):
    """MODEL_MAX_INTENT_F1_DROP raised to 0.05 lets the −0.03 intent through."""
    per_intent = dict.fromkeys(INTENTS, 0.95) | {"complain": 0.92}
    candidate = metrics(macro=0.950, per_intent=per_intent)
    monkeypatch.setattr(settings, "model_max_intent_f1_drop", 0.05)
    assert checks.judge(candidate, LIVE).passed
    monkeypatch.setattr(settings, "model_max_macro_f1_drop", 0.0)
    monkeypatch.setattr(settings, "model_max_intent_f1_drop", 0.0)
    assert not checks.judge(candidate, LIVE).passed


def test_conversation_cases_the_live_model_passes_must_pass():
    """The live model fails faq-2; a candidate failing faq-2 only passes, one failing
    handoff-1 too is refused with the case named."""
    assert checks.judge(metrics(macro=0.95, failed=("faq-2",)), LIVE).passed
    v = checks.judge(metrics(macro=0.95, failed=("faq-2", "handoff-1")), LIVE)
    assert v.regressed_cases == ("handoff-1",)
    assert v.refusals == ("1 个对话测试现网模型通过、候选模型未通过：handoff-1。",)


def test_missing_figures():
    """A candidate without held-out figures is refused; without a suite result while the live
    model has one, refused; what the live model lacks is a note, not a refusal."""
    assert not checks.judge({}, LIVE).passed
    no_suite = metrics(macro=0.95)
    del no_suite["conversations"]
    assert "对话测试结果" in checks.judge(no_suite, LIVE).refusals[0]
    v = checks.judge(metrics(macro=0.95), None)
    assert v.passed and len(v.notes) == 2
    v = checks.judge(metrics(macro=0.95), None, has_live=False)
    assert v.passed and v.notes == ("目前没有现网模型，无从比较。",)


def test_scores_read_the_shapes_the_trainer_may_send():
    """per_intent as {f1: …} or as numbers, entities.f1 or entity_f1, passed counted when
    absent; booleans are not numbers."""
    s = checks.scores(
        {
            "intent_macro_f1": 0.9,
            "intent_f1": {"greet": 0.8, "bad": True},
            "entity_f1": 0.7,
            "conversations": {"total": 5, "failed": ["a"]},
        }
    )
    assert (s.macro_f1, s.intent_f1, s.entity_f1) == (0.9, {"greet": 0.8}, 0.7)
    assert (s.conversations_passed, s.conversations_total, s.conversations_failed) == (4, 5, ("a",))
    assert checks.scores(None) == checks.Scores()
    assert checks.scores(metrics()).entity_f1 == 0.99
