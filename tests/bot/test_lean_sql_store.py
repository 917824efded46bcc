"""speedups.LeanSQLTrackerStore (the redacting store's SQL backend) against Rasa's own SQL store:
the same rows and the same trackers over a conversation, on SQLite files; and the cached
`Event.resolve_by_type` against Rasa's lookup."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import speedups
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.utils.common import all_subclasses

from privacy.tracker_store import RedactingTrackerStore

from .test_privacy_tracker_store import DOMAIN, ID, NAME, PHONE, _user

OWNER = "刘桂芳"


def _stores(tmp_path: Path) -> tuple[RedactingTrackerStore, RedactingTrackerStore]:
    """(lean: the project's SQL backend, reference: Rasa's SQLTrackerStore), both redacting."""
    lean = RedactingTrackerStore(
        domain=DOMAIN, backend="sql", dialect="sqlite", db=str(tmp_path / "lean.db")
    )
    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "rasa.db"))
    reference = RedactingTrackerStore(domain=DOMAIN, inner=rasa_store)
    return lean, reference


def _rows(store: RedactingTrackerStore, sender: str) -> list[tuple[Any, ...]]:
    inner = store.inner
    assert isinstance(inner, SQLTrackerStore)
    with inner.session_scope() as session:
        rows = session.query(inner.SQLEvent).filter_by(sender_id=sender).order_by("id").all()
        return [
            (r.type_name, r.timestamp, r.intent_name, r.action_name, json.loads(r.data))
            for r in rows
        ]


def _turns() -> list[list[Event]]:
    """Four turns: an ID number, the name question answered by a bare name (masked only
    because of the question asked in the turn before), a phone, then a new session."""
    now = time.time()
    turns: list[list[Event]] = [
        [
            ActionExecuted("action_listen"),
            _user(f"我的身份证是{ID}", [("id_number", ID)]),
            SlotSet("id_number", "enc:gAAAAABnFakeFernetToken=="),
            SlotSet("requested_slot", "person_name"),
            BotUttered("请问您怎么称呼？"),
            ActionExecuted("action_listen"),
        ],
        [
            UserUttered(OWNER, intent={"name": "inform", "confidence": 0.6}),
            SlotSet("requested_slot", "phone"),
            BotUttered("请留个手机号"),
            ActionExecuted("action_listen"),
        ],
        [
            _user(f"{NAME}，电话{PHONE}", [("person_name", NAME), ("phone", PHONE)]),
            SlotSet("person_name", NAME),
            SlotSet("phone", PHONE),
            SlotSet("requested_slot", None),
            BotUttered(f"{NAME}您好，我们将通过{PHONE}联系您。"),
            ActionExecuted("action_listen"),
        ],
        [
            ActionExecuted("action_session_start"),
            SessionStarted(),
            ActionExecuted("action_listen"),
            _user("你好", []),
            BotUttered("您好"),
            Restarted(),
            ActionExecuted("action_listen"),
        ],
    ]
    for index, turn in enumerate(turns):
        for offset, event in enumerate(turn):
            event.timestamp = now + index + offset / 100
    return turns


def test_same_rows_and_trackers_as_rasas_sql_store(tmp_path: Path) -> None:
    lean, reference = _stores(tmp_path)
    assert type(lean.inner).__name__ == "LeanSQLTrackerStore"
    sender = f"lean-{uuid.uuid4().hex[:8]}"

    async def turn(store: TrackerStore, events: list[Event], save_twice: bool) -> None:
        tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
        for event in events[:2]:
            tracker.update(event)
        if save_twice:  # a save in the middle of a turn, then the rest: nothing twice
            await store.save(tracker)
        for event in events[2:]:
            tracker.update(event)
        await store.save(tracker)

    async def scenario() -> None:
        for index, events in enumerate(_turns()):
            for store in (lean, reference):
                await turn(store, events, save_twice=index == 1)
            assert _rows(lean, sender) == _rows(reference, sender), index
            last = [await s.retrieve(sender) for s in (lean, reference)]
            assert last[0] is not None and last[1] is not None
            assert last[0].current_state() == last[1].current_state()
            assert [e.as_dict() for e in last[0].events] == [e.as_dict() for e in last[1].events]
            assert speedups.stored_events(last[0]) == len(last[0].events)
        full = [await s.retrieve_full_tracker(sender) for s in (lean, reference)]
        assert full[0] is not None and full[1] is not None
        assert [e.as_dict() for e in full[0].events] == [e.as_dict() for e in full[1].events]
        stored = json.dumps([row[4] for row in _rows(lean, sender)], ensure_ascii=False)
        for secret in (ID, PHONE, NAME, OWNER):
            assert secret not in stored, secret
        assert "刘**" in stored  # the bare answer to the name question, masked by its context
        assert await lean.retrieve("nobody") is None

    asyncio.run(scenario())


def test_unknown_trackers_are_saved_as_rasa_does(tmp_path: Path) -> None:
    """A tracker that was not read from the store (no count known) is counted as Rasa does."""
    lean, _ = _stores(tmp_path)
    sender = f"lean-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        first = await lean.get_or_create_tracker(sender)
        first.update(_user("你好", []))
        await lean.save(first)
        stranger = await lean.retrieve(sender)
        assert stranger is not None
        copy = stranger.copy()  # a copy carries no count
        copy.update(BotUttered("您好"))
        assert speedups.stored_events(copy) in (None, len(stranger.events))
        await lean.save(copy)
        again = await lean.retrieve(sender)
        assert again is not None
        assert [e.as_dict() for e in again.events] == [e.as_dict() for e in copy.events]

    asyncio.run(scenario())


def test_cached_resolve_by_type_answers_as_rasa() -> None:
    speedups.install_speedups()
    original = Event.resolve_by_type.__wrapped__  # type: ignore[attr-defined]
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert {"user", "bot", "slot", "action", "session_started"} <= names
    for _ in range(2):  # the second round comes from the cache
        for name in sorted(names):
            assert Event.resolve_by_type(name) is original(name)
    assert Event.resolve_by_type("topic") is None
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError):
        Event.resolve_by_type("no_such_event")
    assert Event.from_parameters({"event": "slot", "name": "x", "value": 1}) == SlotSet("x", 1)
