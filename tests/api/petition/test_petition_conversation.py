"""The conversation a petition arrives with: stored masked, once, within limits."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.petition.models import Petition, PetitionMessage

BODY = {
    "person_name": "李桂芳",
    "phone": "13912345678",
    "address": "幸福里小区5号楼1单元302",
    "description": "住了八年还没有房本，开发商联系不上。",
    "consent": True,
    "channel": "webchat",
}
TURNS = [
    {"at": "2026-11-23T02:00:00+00:00", "from": "resident", "text": "我想问房本的事"},
    {
        "at": "2026-11-23T10:00:05+08:00",
        "from": "bot",
        "text": "请告诉我您的房屋地址。\n例如：幸福里5号楼",
    },
    {
        "at": "2026-11-23T02:00:09Z",
        "from": "resident",
        "text": "我身份证370202198001011234，电话13912345678",
    },
]


def _messages(db: Session, number: str) -> list[PetitionMessage]:
    petition = db.scalar(select(Petition).where(Petition.number == number))
    assert petition is not None
    return list(
        db.scalars(
            select(PetitionMessage)
            .where(PetitionMessage.petition_id == petition.id)
            .order_by(PetitionMessage.position)
        )
    )


def _at_utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def test_turns_are_stored_in_order_and_masked(client: TestClient, db: Session) -> None:
    """Turns land in petition_messages in order; an ID number and a phone are masked again."""
    r = client.post("/api/v1/petitions", json={**BODY, "conversation": TURNS})
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"number", "status", "status_label", "answer_due", "provisional"}
    rows = _messages(db, r.json()["number"])
    assert [(m.position, m.sender) for m in rows] == [(0, "resident"), (1, "bot"), (2, "resident")]
    assert rows[1].text == "请告诉我您的房屋地址。\n例如：幸福里5号楼"
    assert rows[2].text == "我身份证**************1234，电话139****5678"
    assert "370202198001011234" not in rows[2].text and "13912345678" not in rows[2].text
    assert _at_utc(rows[0].at) == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert _at_utc(rows[1].at) == datetime(2026, 11, 23, 2, 0, 5, tzinfo=UTC)


def test_without_conversation_nothing_is_stored(client: TestClient, db: Session) -> None:
    """A petition without `conversation` works as before and has no turns."""
    r = client.post("/api/v1/petitions", json=BODY)
    assert r.status_code == 201, r.text
    assert _messages(db, r.json()["number"]) == []


def test_idempotent_retry_stores_turns_once(client: TestClient, db: Session) -> None:
    """A retry with the same key (even with one more turn) answers the first petition and
    stores no second copy of the turns."""
    headers = {"Idempotency-Key": "bot-conv-1"}
    r1 = client.post("/api/v1/petitions", json={**BODY, "conversation": TURNS}, headers=headers)
    r2 = client.post("/api/v1/petitions", json={**BODY, "conversation": TURNS}, headers=headers)
    grown = [*TURNS, {"at": "2026-11-23T02:01:00Z", "from": "bot", "text": "正在提交"}]
    r3 = client.post("/api/v1/petitions", json={**BODY, "conversation": grown}, headers=headers)
    assert r1.status_code == 201 and r2.status_code == 200 and r3.status_code == 200
    assert r1.json() == r2.json() == r3.json()
    assert len(_messages(db, r1.json()["number"])) == len(TURNS)
    assert db.scalar(select(func.count()).select_from(PetitionMessage)) == len(TURNS)


def test_eighty_turns_pass_eighty_one_are_refused(client: TestClient, db: Session) -> None:
    """At most 80 turns; the 81st is a Chinese 422 and nothing is stored."""
    turn = {"at": "2026-11-23T02:00:00Z", "from": "resident", "text": "你好"}
    ok = client.post("/api/v1/petitions", json={**BODY, "conversation": [turn] * 80})
    assert ok.status_code == 201, ok.text
    assert len(_messages(db, ok.json()["number"])) == 80
    before = db.scalar(select(func.count()).select_from(Petition))
    r = client.post(
        "/api/v1/petitions",
        json={**BODY, "phone": "13800000002", "conversation": [turn] * 81},
    )
    assert r.status_code == 422
    assert "对话记录最多 80 条" in r.json()["message"]
    assert db.scalar(select(func.count()).select_from(Petition)) == before


def test_control_character_is_refused(client: TestClient) -> None:
    """A control character other than a newline is a 422 with a Chinese message."""
    for bad in ("你好\x00", "你\x1b[31m好", "a\tb"):
        turn = {"at": "2026-11-23T02:00:00Z", "from": "resident", "text": bad}
        r = client.post("/api/v1/petitions", json={**BODY, "conversation": [turn]})
        assert r.status_code == 422, bad
        assert "控制字符" in r.json()["message"]


def test_bad_turns_are_refused_in_chinese(client: TestClient) -> None:
    """Unknown sender, empty or over-long text, a bad time and extra keys are refused."""
    good = {"at": "2026-11-23T02:00:00Z", "from": "resident", "text": "你好"}
    cases = [
        ({**good, "from": "staff"}, "发言方"),
        ({**good, "text": "  "}, "不能为空"),
        ({**good, "text": "字" * 1001}, "最多 1000 个字"),
        ({**good, "at": 1700000000}, "对话时间"),
    ]
    for turn, words in cases:
        r = client.post("/api/v1/petitions", json={**BODY, "conversation": [turn]})
        assert r.status_code == 422, turn
        assert words in r.json()["message"], r.json()
    ok = client.post(
        "/api/v1/petitions", json={**BODY, "conversation": [{**good, "text": "字" * 1000}]}
    )
    assert ok.status_code == 201
    r = client.post("/api/v1/petitions", json={**BODY, "conversation": [{**good, "x": 1}]})
    assert r.status_code == 422
