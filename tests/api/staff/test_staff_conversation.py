"""Staff read the conversation a petition came with: API field, scoping and console card."""

from __future__ import annotations

from staff.staffkit import bearer, make_user
from staff.test_staff_auth import console_login

from app.petition.models import Petition

BODY = {
    "person_name": "李四",
    "phone": "13900001111",
    "address": "观象山庄3号楼2单元501",
    "description": "交房八年还没办房本。",
    "consent": True,
    "channel": "webchat",
}
TURNS = [
    {
        "at": "2026-11-23T02:00:00Z",
        "from": "resident",
        "text": "房本什么时候能办？<script>x</script>",
    },
    {"at": "2026-11-23T02:00:03Z", "from": "bot", "text": "请留下手机号 13900001111 以便回访"},
]


def _intake(client, db, conversation=TURNS) -> Petition:
    body = {**BODY, "conversation": conversation} if conversation is not None else BODY
    r = client.post("/api/v1/petitions", json=body)
    assert r.status_code == 201, r.text
    petition = db.query(Petition).filter_by(number=r.json()["number"]).one()
    return petition


def test_detail_answers_the_conversation_in_shanghai_time(client, db):
    """GET by number and by id: `conversation` in order, `from`, +08:00 times, masked text."""
    clerk = make_user(db, "clerk")
    petition = _intake(client, db)
    headers = bearer(db, clerk)
    db.commit()
    for ref in (petition.number, str(petition.id)):
        r = client.get(f"/api/v1/staff/petitions/{ref}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["conversation"] == [
            {
                "at": "2026-11-23T10:00:00+08:00",
                "from": "resident",
                "text": "房本什么时候能办？<script>x</script>",
            },
            {
                "at": "2026-11-23T10:00:03+08:00",
                "from": "bot",
                "text": "请留下手机号 139****1111 以便回访",
            },
        ]


def test_detail_without_conversation_is_an_empty_list(client, db):
    """A petition taken in without turns answers `conversation: []`."""
    clerk = make_user(db, "clerk")
    petition = _intake(client, db, conversation=None)
    headers = bearer(db, clerk)
    db.commit()
    r = client.get(f"/api/v1/staff/petitions/{petition.number}", headers=headers)
    assert r.status_code == 200 and r.json()["conversation"] == []


def test_officers_see_only_their_departments_conversation(client, db):
    """The officer of the assigned department reads it; another department's gets a 404."""
    clerk = make_user(db, "clerk")
    officer = make_user(db, "officer", department="housing_bureau")
    other = make_user(db, "officer", department="tax_bureau")
    petition = _intake(client, db)
    headers = bearer(db, clerk)
    db.commit()
    r = client.post(
        f"/api/v1/staff/petitions/{petition.number}/assign",
        json={"departments": ["housing_bureau"], "version": petition.version},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["conversation"]) == 2
    mine = client.get(f"/api/v1/staff/petitions/{petition.number}", headers=bearer(db, officer))
    assert mine.status_code == 200 and len(mine.json()["conversation"]) == 2
    other_headers = bearer(db, other)
    db.commit()
    for ref in (petition.number, str(petition.id)):
        r = client.get(f"/api/v1/staff/petitions/{ref}", headers=other_headers)
        assert r.status_code == 404
        assert "conversation" not in r.json() and "房本什么时候" not in r.text


def test_console_page_shows_the_conversation_card(client, db):
    """The petition page has a 对话记录 card with 居民/机器人, Shanghai time, escaped text."""
    clerk = make_user(db, "clerk")
    petition = _intake(client, db)
    bare = _intake(client, db, conversation=None)
    db.commit()
    console_login(client, clerk.username)
    page = client.get(f"/console/petitions/{petition.number}").text
    assert "对话记录" in page and "居民" in page and "机器人" in page
    assert "2026-11-23 10:00" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert "139****1111 以便回访" in page
    empty = client.get(f"/console/petitions/{bare.number}").text
    assert "对话记录" in empty and "（无对话记录）" in empty
