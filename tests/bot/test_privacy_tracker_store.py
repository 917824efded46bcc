"""The redacting tracker store over the in-memory, SQL (SQLite) and real Redis stores."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path

import pytest

BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from rasa.core.tracker_store import (  # noqa: E402
    InMemoryTrackerStore,
    RedisTrackerStore,
    SQLTrackerStore,
    TrackerStore,
)
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import (  # noqa: E402
    ActionExecuted,
    BotUttered,
    SlotSet,
    UserUttered,
)
from rasa.utils.endpoints import EndpointConfig  # noqa: E402

from privacy.tracker_store import RedactingTrackerStore  # noqa: E402

ID = "37020319800101123X"
PHONE = "13912345678"
NAME = "王淑芬"

DOMAIN = Domain.from_yaml(
    """
version: "3.1"
intents: [inform, request_human]
entities: [id_number, phone, person_name]
slots:
  id_number:
    type: text
    mappings: [{type: from_entity, entity: id_number}]
  phone:
    type: text
    mappings: [{type: from_entity, entity: phone}]
  person_name:
    type: text
    mappings: [{type: from_entity, entity: person_name}]
  lookup_result:
    type: any
    mappings: [{type: custom}]
"""
)


def _user(text: str, entities: list[tuple[str, str]]) -> UserUttered:
    found = [
        {
            "entity": name,
            "value": value,
            "start": text.index(value),
            "end": text.index(value) + len(value),
        }
        for name, value in entities
    ]
    return UserUttered(
        text,
        intent={"name": "inform", "confidence": 0.97},
        entities=found,
        parse_data={
            "text": text,
            "intent": {"name": "inform", "confidence": 0.97},
            "entities": found,
        },
        input_channel="rest",
    )


def _first_turn() -> list:
    return [
        ActionExecuted("action_listen"),
        _user(f"我的身份证是{ID}", [("id_number", ID)]),
        SlotSet("id_number", ID),  # action_extract_slots, before the validator ran
        SlotSet("id_number", "enc:gAAAAABnFakeFernetToken=="),  # the validator's reference
        BotUttered("请问房主姓名是？"),
        ActionExecuted("action_listen"),
    ]


def _second_turn() -> list:
    return [
        _user(f"{NAME}，电话{PHONE}", [("person_name", NAME), ("phone", PHONE)]),
        SlotSet("person_name", NAME),
        SlotSet("phone", PHONE),
        SlotSet("lookup_result", {"owner": NAME, "tel": PHONE, "unit": "3号楼2单元501"}),
        BotUttered(f"{NAME}您好，我们将通过{PHONE}联系您。"),
        ActionExecuted("action_listen"),
    ]


def _assert_clean(store_dump: str) -> None:
    for secret in (ID, PHONE, NAME, "1980010112", "1234567"):
        assert secret not in store_dump, secret


def _sql_store(tmp_path: Path) -> TrackerStore:
    return RedactingTrackerStore(
        domain=DOMAIN, backend="sql", dialect="sqlite", db=str(tmp_path / "tracker.db")
    )


def _redis_store(prefix: str) -> TrackerStore:
    return RedactingTrackerStore(
        domain=DOMAIN, host="127.0.0.1", port=6379, key_prefix=prefix, record_exp=300
    )


async def _two_turns(store: TrackerStore, sender: str) -> None:
    tracker = await store.get_or_create_tracker(sender)
    for event in _first_turn():
        tracker.update(event)
    live_dump = json.dumps([e.as_dict() for e in tracker.events], ensure_ascii=False)
    await store.save(tracker)
    assert ID in live_dump  # the live tracker of the turn is untouched
    assert tracker.get_slot("id_number") == "enc:gAAAAABnFakeFernetToken=="

    # The next turn starts from what was stored, as Rasa does.
    tracker = await store.retrieve(sender)
    assert tracker is not None
    assert tracker.get_slot("id_number") == "enc:gAAAAABnFakeFernetToken=="
    assert tracker.latest_message.text == "我的身份证是**************123X"
    for event in _second_turn():
        tracker.update(event)
    await store.save(tracker)


def _dump(tracker) -> str:
    return json.dumps(tracker.current_state(), ensure_ascii=False) + json.dumps(
        [e.as_dict() for e in tracker.events], ensure_ascii=False
    )


@pytest.mark.parametrize("backend", ["memory", "sql", "redis"])
def test_two_turn_conversation_is_stored_masked(backend: str, tmp_path: Path) -> None:
    sender = f"privacy-{uuid.uuid4().hex[:8]}"
    prefix = f"test{uuid.uuid4().hex[:8]}"
    if backend == "memory":
        store = RedactingTrackerStore(domain=DOMAIN)
    elif backend == "sql":
        store = _sql_store(tmp_path)
    else:
        store = _redis_store(prefix)

    async def scenario() -> None:
        await _two_turns(store, sender)
        stored = await store.retrieve_full_tracker(sender)
        assert stored is not None
        dump = _dump(stored)
        _assert_clean(dump)
        assert stored.get_slot("id_number") == "enc:gAAAAABnFakeFernetToken=="
        assert stored.get_slot("phone") == "139****5678"
        assert stored.get_slot("person_name") == "王**"
        assert stored.get_slot("lookup_result") == {
            "owner": "王**",
            "tel": "139****5678",
            "unit": "3号楼2单元501",
        }
        texts = [e.text for e in stored.events if isinstance(e, UserUttered)]
        assert texts == ["我的身份证是**************123X", "王**，电话139****5678"]
        assert len([e for e in stored.events if isinstance(e, UserUttered)]) == 2
        assert any(str(key).endswith(sender) for key in await store.keys())

        # What the backend itself holds, read without the wrapper.
        inner = store.inner
        if isinstance(inner, InMemoryTrackerStore):
            raw = inner.store[sender]
        elif isinstance(inner, SQLTrackerStore):
            with inner.session_scope() as session:
                rows = session.query(inner.SQLEvent).filter_by(sender_id=sender).all()
                raw = json.dumps([json.loads(r.data) for r in rows])
                assert len(rows) == len(stored.events)  # no duplicated events on re-save
        else:
            assert isinstance(inner, RedisTrackerStore)
            raw = inner.red.get(inner.key_prefix + sender)
            raw = raw.decode() if isinstance(raw, bytes) else raw
            inner.red.delete(inner.key_prefix + sender)
        decoded = json.dumps(json.loads(raw), ensure_ascii=False)
        _assert_clean(decoded)
        assert "**************123X" in decoded

    asyncio.run(scenario())


def test_created_from_endpoint_config_as_rasa_does(tmp_path: Path) -> None:
    config = EndpointConfig(
        type="privacy.tracker_store.RedactingTrackerStore",
        backend="sql",
        dialect="sqlite",
        db=str(tmp_path / "t.db"),
    )
    store = TrackerStore.create(config, domain=DOMAIN)
    inner = getattr(store, "_tracker_store", store)
    assert isinstance(inner, RedactingTrackerStore)
    assert isinstance(inner.inner, SQLTrackerStore)
    store.domain = DOMAIN
    assert inner.inner.domain is DOMAIN
    default = TrackerStore.create(
        EndpointConfig(type="privacy.tracker_store.RedactingTrackerStore"), domain=DOMAIN
    )
    assert isinstance(getattr(default, "_tracker_store", default).inner, InMemoryTrackerStore)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError):
        RedactingTrackerStore(domain=DOMAIN, backend="mongo")


def test_log_records_are_masked_once_the_store_exists(caplog: pytest.LogCaptureFixture) -> None:
    RedactingTrackerStore(domain=DOMAIN)
    # The logger's own level too: importing Rasa elsewhere in the session may have raised it.
    with caplog.at_level(logging.INFO, logger="rasa.core.processor"):
        logging.getLogger("rasa.core.processor").info("text=%s phone=%s", ID, PHONE)
    assert ID not in caplog.text and PHONE not in caplog.text
    assert "**************123X" in caplog.text and "139****5678" in caplog.text
