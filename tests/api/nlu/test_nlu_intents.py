"""The api's list of intents and entities (app/nlu/intents.py) is the bot's domain, and the FAQ
topics an annotation may use are the catalogue's, which the domain answers: they never drift."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.nlu import intents

BOT_DOMAIN = Path(__file__).resolve().parents[3] / "bot" / "domain"


def _domain() -> dict[str, list]:
    merged: dict[str, list] = {"intents": [], "entities": [], "responses": []}
    for path in sorted(BOT_DOMAIN.glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("intents", "entities"):
            for entry in part.get(key) or []:
                merged[key].append(next(iter(entry)) if isinstance(entry, dict) else entry)
        merged["responses"] += list(part.get("responses") or {})
    return merged


def test_intents_are_the_domains():
    """Same intents, same entities as bot/domain/*.yml (each listed once here)."""
    domain = _domain()
    assert sorted(intents.INTENTS) == sorted(set(domain["intents"]))
    assert len(set(intents.INTENTS)) == len(intents.INTENTS)
    assert sorted(intents.ENTITIES) == sorted(set(domain["entities"]))
    assert set(intents.INTENT_LABELS) == set(intents.INTENTS) - {"policy_faq"}


def test_faq_topics_are_the_catalogues_and_the_domain_answers_them():
    """policy_faq/<topic> for every catalogue topic, each with its utter_ response; bare
    policy_faq and nlu_fallback are not labels."""
    domain = _domain()
    topics = intents.faq_topics()
    assert topics and len(topics) == 8
    answered = {
        r.split("/", 1)[1] for r in domain["responses"] if r.startswith("utter_policy_faq/")
    }
    assert set(topics) <= answered
    labels = intents.annotation_intents()
    assert "policy_faq" not in labels and "nlu_fallback" not in labels
    assert {f"policy_faq/{t}" for t in topics} <= set(labels)
    assert intents.intent_label("policy_faq/school_enrolment").startswith("政策问答：")
