"""What the bot reports lands in the inbox masked (ID numbers, phones, names), under a
pseudonym, only with the service token, and a `low_confidence` report only below the api's own
threshold. No endpoint, page, case or export ever shows the clear values."""

from __future__ import annotations

from nlu.nlukit import ID_NUMBER, PHONE, SENDER, service
from sqlalchemy import select
from staff.test_staff_auth import console_login

from app.core.config import settings
from app.core.security import pseudonym
from app.nlu.models import NluInboxItem

NAME = "刘桂芳"
TEXT = f"俺叫{NAME} 身份证{ID_NUMBER} 电话{PHONE} 你们到底管不管"
CONTEXT = [
    {"from": "resident", "text": f"我的手机{PHONE}"},
    {"from": "bot", "text": "您好，请问有什么可以帮您？"},
    {"from": "resident", "text": TEXT},
    {"from": "bot", "text": f"抱歉没太明白。您的身份证是{ID_NUMBER}吗？"},
]
# What the NLU found in TEXT (the api masks the name wherever the conversation repeats it).
ENTITIES = [
    {"entity": "person_name", "start": 2, "end": 5, "value": NAME},
    {"entity": "phone", "start": TEXT.index(PHONE), "end": TEXT.index(PHONE) + 11, "value": PHONE},
]


def _row_values(item: NluInboxItem) -> str:
    return repr({c.name: getattr(item, c.name) for c in NluInboxItem.__table__.columns})


def _clear(blob: str) -> list[str]:
    return [v for v in (ID_NUMBER, PHONE, NAME, SENDER) if v in blob]


def test_observation_is_masked_everywhere(client, db, observe, maintainer, nlu_dirs):
    """ID number, phone and the name the NLU found are masked in the row, the inbox JSON, the
    test case, the console pages and the exported file; the sender is only a pseudonym."""
    answer = observe(
        TEXT,
        context=CONTEXT,
        entities=ENTITIES,
        project_code="QS001",
        model_id="20261202-abc",
    )
    item = db.get(NluInboxItem, answer["id"])
    assert item is not None
    assert _clear(_row_values(item)) == []
    assert "139****5678" in item.text and "**************1234" in item.text
    assert "刘**" in item.text
    assert item.sender == pseudonym(SENDER)
    assert [t["text"] for t in item.context][0] == "我的手机139****5678"
    assert len(item.text) == len(TEXT)  # masks keep lengths, so the spans stay valid
    assert {e["entity"]: e["value"] for e in item.entities} == {
        "person_name": "刘**",
        "phone": "139****5678",
    }

    inbox = client.get("/api/v1/staff/nlu/inbox", headers=maintainer)
    assert inbox.status_code == 200
    assert _clear(inbox.text) == []
    (listed,) = inbox.json()["items"]
    assert set(listed) >= {"id", "text", "predicted_intent", "confidence", "channel", "at"}
    assert listed["context"][2]["from"] == "resident"
    assert listed["at"].endswith("+08:00")

    case = client.get(f"/api/v1/staff/nlu/conversations/{item.id}/case", headers=maintainer)
    assert case.status_code == 200 and _clear(case.text) == []
    case = client.get(
        f"/api/v1/staff/nlu/conversations/{pseudonym(SENDER)}/case", headers=maintainer
    )
    assert case.status_code == 200 and _clear(case.text) == []

    r = client.post(
        f"/api/v1/staff/nlu/inbox/{item.id}/annotation",
        json={"intent": "complain"},
        headers=maintainer,
    )
    assert r.status_code == 200 and _clear(r.text) == []
    exported = client.post("/api/v1/staff/nlu/export", headers=maintainer)
    assert exported.status_code == 200, exported.text
    written = (nlu_dirs[1] / exported.json()["files"][0]["path"].split("/")[-1]).read_text()
    assert _clear(written) == [] and "电话139****5678" in written


def test_console_pages_show_only_masked_text(client, db, observe):
    """The maintainer's inbox and conversation pages never show the clear values."""
    from staff.staffkit import make_user

    observe(TEXT, context=CONTEXT, entities=ENTITIES)
    user = make_user(db, "maintainer")
    db.commit()
    console_login(client, user.username)
    for url in (
        "/console/nlu",
        "/console/nlu/conversations",
        f"/console/nlu/conversations/{pseudonym(SENDER)}",
        f"/console/nlu/conversations/{pseudonym(SENDER)}/case.yml",
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert _clear(page.text) == [], url
    assert "139****5678" in client.get("/console/nlu").text


def test_only_the_service_may_report(client):
    """No token: 403 in Chinese; a wrong token: 401; no sender id: 422."""
    body = {"text": "啊啊啊", "reason": "fallback", "confidence": 0.1}
    r = client.post("/api/v1/nlu/observations", json=body)
    assert r.status_code == 403 and r.json()["message"] == "此接口仅供智能客服调用。"
    r = client.post(
        "/api/v1/nlu/observations",
        json=body,
        headers={"Authorization": "Service wrong", "X-Sender-Id": SENDER},
    )
    assert r.status_code == 401
    r = client.post(
        "/api/v1/nlu/observations",
        json=body,
        headers={"Authorization": f"Service {settings.service_token}"},
    )
    assert r.status_code == 422 and "会话标识" in r.json()["message"]


def test_bot_cannot_claim_a_staff_flag_or_bad_values(client):
    """Only the bot's reasons; confidence within 0..1; text not empty."""
    for body in (
        {"text": "啊", "reason": "staff_flag"},
        {"text": "啊", "reason": "fallback", "confidence": 1.5},
        {"text": "", "reason": "fallback"},
        {"text": "啊", "reason": "fallback", "channel": "../../etc"},
    ):
        r = client.post("/api/v1/nlu/observations", json=body, headers=service())
        assert r.status_code == 422, body


def test_api_applies_its_own_threshold(client, db, observe, monkeypatch):
    """A `low_confidence` report at or above NLU_INBOX_CONFIDENCE is not kept (200, id null);
    below it, it is (201). Other reasons are kept whatever the confidence."""
    kept = observe("这个咋整啊", reason="low_confidence", confidence=0.41)
    assert kept["id"] is not None
    r = client.post(
        "/api/v1/nlu/observations",
        json={"text": "房本啥时候能下来", "reason": "low_confidence", "confidence": 0.6},
        headers=service(),
    )
    assert r.status_code == 200 and r.json() == {"id": None}
    assert observe("讲个笑话", reason="out_of_scope", confidence=0.97)["id"] is not None
    monkeypatch.setattr(settings, "nlu_inbox_confidence", 0.8)
    assert observe("房本啥时候能下来", reason="low_confidence", confidence=0.7)["id"] is not None
    reasons = sorted(db.scalars(select(NluInboxItem.reason)).all())
    assert reasons == ["low_confidence", "low_confidence", "out_of_scope"]


def test_the_same_message_reported_again_is_one_item(observe):
    """A retried turn (or the same text reported for two reasons) does not fill the inbox."""
    first = observe("呜呜呜呜", reason="fallback")
    again = observe("呜呜呜呜", reason="misunderstood")
    other_sender = observe("呜呜呜呜", sender="web-other-sender", reason="fallback")
    assert first["id"] == again["id"] != other_sender["id"]


def test_case_is_a_conversation_case(client, db, observe, maintainer, tmp_path):
    """The case loads with the conversation suite's own loader, says the resident's turns in
    order, and every turn has an expectation that fails until the maintainer fills it in."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "conversations"))
    import runner

    item_id = observe(TEXT, context=CONTEXT, entities=ENTITIES)["id"]
    r = client.get(f"/api/v1/staff/nlu/conversations/{item_id}/case", headers=maintainer)
    assert r.headers["content-type"].startswith("application/x-yaml")
    (tmp_path / "inbox.yml").write_text(r.text, encoding="utf-8")
    (case,) = runner.load_cases(tmp_path)
    assert case["id"] == f"inbox_{item_id}"
    says = [t["say"] for t in case["turns"]]
    assert len(says) == 2 and says[0] == "我的手机139****5678"
    assert says[1].startswith("俺叫刘** 身份证**************1234")
    for turn in case["turns"]:
        assert runner.check_turn(turn["expect"], [{"text": "您好，请问要查哪个小区？"}])
    observed = case["turns"][1]["expect"]
    assert observed["not_contains"] == ["抱歉没太明白"]
    assert runner.check_turn(observed, [{"text": "抱歉没太明白。"}])
    missing = client.get("/api/v1/staff/nlu/conversations/99999/case", headers=maintainer)
    assert missing.status_code == 404 and missing.json()["message"] == "没有找到这条消息。"
