"""The inbox's filters, and the annotations: the contract's intents and FAQ topics only, spans
inside the text, out of scope, and deleting (the text goes, an audit row without it stays)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditLog
from app.nlu.models import NluInboxItem

INBOX = "/api/v1/staff/nlu/inbox"


def _ids(client, headers, **params) -> list[int]:
    r = client.get(INBOX, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


@pytest.fixture
def seeded(db, observe) -> dict[str, int]:
    """Five reports of different kinds, one of them from yesterday (Shanghai) and one old."""
    ids = {
        "fallback": observe("嗯嗯啊啊", reason="fallback", confidence=0.2, channel="webchat")["id"],
        "oos": observe(
            "物业费多少钱",
            reason="out_of_scope",
            predicted_intent="out_of_scope",
            confidence=0.92,
            channel="wechat",
            project_code="QS001",
        )["id"],
        "low": observe(
            "房本那个事咋说",
            reason="low_confidence",
            predicted_intent="ask_certificate_status",
            confidence=0.45,
            channel="webchat",
            project_code="QS001",
        )["id"],
        "handoff": observe(
            "你们这不管用",
            reason="handoff",
            predicted_intent="complain",
            confidence=0.55,
            channel="wechat",
        )["id"],
        "old": observe("去年的消息", reason="fallback", confidence=0.1, channel="bot")["id"],
    }
    old = db.get(NluInboxItem, ids["old"])
    old.created_at = datetime.now(UTC) - timedelta(days=40)
    db.commit()
    return ids


def test_filters(client, seeded, maintainer):
    """Predicted intent, confidence, channel, dates, project, reason, and newest first."""
    ids = seeded
    everything = _ids(client, maintainer)
    assert everything[:4] == [ids["handoff"], ids["low"], ids["oos"], ids["fallback"]]
    assert everything[-1] == ids["old"]
    assert _ids(client, maintainer, intent="out_of_scope") == [ids["oos"]]
    assert set(_ids(client, maintainer, max_confidence=0.45)) == {
        ids["low"],
        ids["fallback"],
        ids["old"],
    }
    assert set(_ids(client, maintainer, channel="webchat")) == {ids["low"], ids["fallback"]}
    assert _ids(client, maintainer, project="QS001") == [ids["low"], ids["oos"]]
    assert _ids(client, maintainer, reason="handoff") == [ids["handoff"]]
    today = datetime.now(UTC).astimezone().date()
    recent = _ids(client, maintainer, since=(today - timedelta(days=2)).isoformat())
    assert ids["old"] not in recent and len(recent) == 4
    old = _ids(client, maintainer, until=(today - timedelta(days=30)).isoformat())
    assert old == [ids["old"]]
    assert _ids(client, maintainer, status="annotated") == []
    r = client.get(INBOX, params={"reason": "nonsense"}, headers=maintainer)
    assert r.status_code == 422 and r.json()["code"]


def _annotate(client, headers, item_id, **body):
    return client.post(f"{INBOX}/{item_id}/annotation", json=body, headers=headers)


def test_annotation_validates_intents_and_spans(client, db, seeded, maintainer):
    """The contract's intents and policy_faq/<topic> of the catalogue; spans inside the text,
    known entities, no overlaps; every refusal in Chinese."""
    item = seeded["low"]
    text = db.get(NluInboxItem, item).text
    for body, code in [
        ({"intent": "nlu_fallback"}, "bad_intent"),
        ({"intent": "policy_faq"}, "bad_intent"),
        ({"intent": "policy_faq/no_such_topic"}, "bad_intent"),
        ({"intent": "ask_weather"}, "bad_intent"),
        ({}, "intent_required"),
        (
            {"intent": "inform", "entities": [{"start": 0, "end": 99, "entity": "address"}]},
            "bad_span",
        ),
        (
            {"intent": "inform", "entities": [{"start": 2, "end": 2, "entity": "address"}]},
            "bad_span",
        ),
        (
            {"intent": "inform", "entities": [{"start": 0, "end": 2, "entity": "house"}]},
            "bad_entity",
        ),
        (
            {
                "intent": "inform",
                "entities": [
                    {"start": 0, "end": 2, "entity": "address"},
                    {"start": 1, "end": 3, "entity": "phone"},
                ],
            },
            "overlapping_spans",
        ),
    ]:
        r = _annotate(client, maintainer, item, **body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["message"])
    assert db.get(NluInboxItem, item).status == "new"

    r = _annotate(
        client,
        maintainer,
        item,
        intent="ask_certificate_status",
        entities=[{"start": 0, "end": 2, "entity": "address"}],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "annotated" and body["intent"] == "ask_certificate_status"
    assert body["annotated_entities"] == [
        {"entity": "address", "start": 0, "end": 2, "value": text[:2]}
    ]
    r = _annotate(client, maintainer, seeded["oos"], intent="policy_faq/school_enrolment")
    assert r.status_code == 200 and r.json()["intent"] == "policy_faq/school_enrolment"
    trail = db.scalars(
        select(AuditLog).where(
            AuditLog.entity_type == "nlu_inbox_item", AuditLog.entity_id == str(item)
        )
    ).all()
    assert [(a.action, a.after["intent"]) for a in trail] == [
        ("nlu.annotate", "ask_certificate_status")
    ]
    assert trail[0].actor.startswith("staff:maintainer")
    assert text not in repr(trail[0].after) and text[:2] not in repr(trail[0].after)


def test_out_of_scope_and_delete(client, db, seeded, maintainer, observe):
    """Out of scope is an annotation; delete empties the text, the context and the same words
    in the conversation's other items, keeps the row and an audit row without the text."""
    r = _annotate(client, maintainer, seeded["fallback"], out_of_scope=True)
    assert r.status_code == 200 and r.json()["status"] == "out_of_scope"
    secret = "俺家住在幸福里8号楼"
    first = observe(secret, sender="web-delete-me", reason="fallback")["id"]
    later = observe(
        "还是不懂",
        sender="web-delete-me",
        reason="fallback",
        context=[{"from": "resident", "text": secret}, {"from": "resident", "text": "还是不懂"}],
    )["id"]
    r = _annotate(client, maintainer, first, delete=True)
    assert r.status_code == 200 and r.json()["status"] == "deleted" and r.json()["text"] == ""
    row = db.get(NluInboxItem, first)
    db.refresh(row)
    assert row.text == "" and row.context == [] and row.status == "deleted"
    other = db.get(NluInboxItem, later)
    db.refresh(other)
    assert secret not in repr(other.context)
    assert other.context[0]["text"] == "（已删除）"
    audit = db.scalars(
        select(AuditLog).where(
            AuditLog.entity_type == "nlu_inbox_item", AuditLog.entity_id == str(first)
        )
    ).all()
    assert [a.action for a in audit] == ["nlu.delete"]
    assert secret not in repr((audit[0].before, audit[0].after))
    assert first not in _ids(client, maintainer)
    assert _ids(client, maintainer, status="deleted") == [first]
    again = _annotate(client, maintainer, first, intent="greet")
    assert again.status_code == 409 and again.json()["message"] == "这条消息已删除。"
    assert _annotate(client, maintainer, 987654, intent="greet").status_code == 404


def test_masked_text_is_no_entity(client, observe, maintainer):
    """A span over masked characters (a phone, an ID number, a name) is refused: it would
    teach the model a `*` number; the rest of the message may still be marked."""
    item = observe("俺住幸福里8号楼 电话13912345678", reason="fallback")["id"]
    phone = {"start": 11, "end": 22, "entity": "phone"}
    r = _annotate(client, maintainer, item, intent="inform", entities=[phone])
    assert r.status_code == 422 and r.json()["code"] == "masked_span"
    assert "脱敏" in r.json()["message"]
    address = {"start": 2, "end": 8, "entity": "address"}
    r = _annotate(client, maintainer, item, intent="inform", entities=[address])
    assert r.status_code == 200
    assert r.json()["annotated_entities"][0]["value"] == "幸福里8号楼"
