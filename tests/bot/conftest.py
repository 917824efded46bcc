"""Fixtures for the bot's action tests: the domain, trackers and a dispatcher."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BOT_DIR = REPO / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402

API = "http://127.0.0.1:8000"


def load_domain() -> dict[str, Any]:
    """The split domain files of bot/domain merged into one dict (as Rasa sends it)."""
    merged: dict[str, Any] = {
        "intents": [],
        "entities": [],
        "slots": {},
        "forms": {},
        "responses": {},
        "actions": [],
    }
    for path in sorted((BOT_DIR / "domain").glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key in ("intents", "entities", "actions"):
            merged[key] += part.get(key) or []
        for key in ("slots", "forms", "responses"):
            merged[key].update(part.get(key) or {})
    return merged


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    """The merged domain."""
    return load_domain()


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    """Collects what an action sends."""
    return CollectingDispatcher()


def make_tracker(
    *,
    text: str = "",
    intent: str = "inform",
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    active_loop: str | None = None,
    requested_slot: str | None = None,
    events: list[dict[str, Any]] | None = None,
    sender_id: str = "test-sender",
    response_key: str | None = None,
    channel: str = "rest",
) -> Tracker:
    """A tracker whose latest message is `text` with the given intent and entities."""
    all_slots: dict[str, Any] = {"requested_slot": requested_slot}
    all_slots.update(slots or {})
    latest: dict[str, Any] = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
    }
    if response_key:
        latest["response_selector"] = {
            "policy_faq": {"response": {"intent_response_key": response_key}}
        }
    user_event = {"event": "user", "text": text, "parse_data": latest, "input_channel": channel}
    return Tracker(
        sender_id=sender_id,
        slots=all_slots,
        latest_message=latest,
        events=(events or []) + [user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def entity(name: str, value: str) -> dict[str, Any]:
    """An entity as the NLU reports it."""
    return {"entity": name, "value": value, "start": 0, "end": len(value)}


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    """Text of every message sent (responses by name are shown as their name)."""
    return [m.get("text") or m.get("response") or "" for m in dispatcher.messages]


def slot_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The last value set for each slot in a list of events."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
