"""POST /api/v1/petitions/lookup: by number and phone, or by phone and name for a resident who
lost the number; Shanghai times, the same 404 whichever half is wrong, rate limits, no personal
data in logs or answers (both backends)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.petition.models import Petition, PetitionAssignment
from app.petition.schemas import normalize_person_name

URL = "/api/v1/petitions/lookup"
PHONE = "13912345678"
NAME = "李桂芳"
BODY = {
    "person_name": NAME,
    "phone": PHONE,
    "address": "幸福里小区5号楼1单元302",
    "description": "住了八年还没有房本，开发商联系不上。",
    "consent": True,
    "channel": "webchat",
}
FIELDS = {
    "number",
    "status",
    "status_label",
    "departments",
    "updated_at",
    "answer_due",
    # issue 11: what the resident hears back
    "answers",
    "outcome",
    "closed_at",
    "closure_due",
    "notice_end",
    "review_due",
    "next_step",
}


def _service(sender: str) -> dict[str, str]:
    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}


def _file(client: TestClient, **change: str) -> str:
    resp = client.post("/api/v1/petitions", json={**BODY, **change})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["number"])


def _stored(db: Session, number: str) -> Petition:
    petition = db.scalar(select(Petition).where(Petition.number == number))
    assert petition is not None
    return petition


def test_by_number_answers_as_before_in_shanghai_time(client: TestClient, db: Session) -> None:
    number = _file(client)
    petition = _stored(db, number)
    petition.updated_at = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)  # 02:30 next day in Shanghai
    db.flush()
    resp = client.post(URL, json={"petition_number": number, "phone": PHONE})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == FIELDS
    assert body["number"] == number and body["status_label"] == "已受理"
    assert body["updated_at"] == "2026-11-24T02:30:00+08:00"


def test_by_phone_and_name_lists_the_petitions_newest_first(
    client: TestClient, db: Session
) -> None:
    first = _file(client)
    second = _file(client, description="又去问了一次，还是没消息。")
    _file(client, person_name="王建国")  # same phone, another name
    _file(client, phone="13800000001")  # same name, another phone
    older = _stored(db, first)
    older.assignments.append(
        PetitionAssignment(department="housing_bureau", answer_due=date(2026, 12, 8))
    )
    db.flush()
    resp = client.post(URL, json={"phone": PHONE, "person_name": NAME})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"petitions"}
    assert [p["number"] for p in body["petitions"]] == [second, first]
    for item in body["petitions"]:
        assert set(item) == FIELDS
        assert item["status"] == "accepted" and item["status_label"] == "已受理"
        assert item["updated_at"].endswith("+08:00")
    assert body["petitions"][1]["departments"] == ["住建局"]
    assert PHONE not in resp.text and NAME not in resp.text


@pytest.mark.parametrize(
    ("phone", "name"),
    [
        ("+86 139-1234-5678", NAME),
        ("１３９１２３４５６７８", NAME),
        ("0086 13912345678", f" {NAME} "),
        ("139 1234 5678", "李 桂芳"),
        (PHONE, "李桂芳"),
    ],
)
def test_phone_and_name_are_normalised(client: TestClient, phone: str, name: str) -> None:
    number = _file(client)
    resp = client.post(URL, json={"phone": phone, "person_name": name})
    assert resp.status_code == 200, resp.text
    assert [p["number"] for p in resp.json()["petitions"]] == [number]


def test_names_compare_normalised() -> None:
    assert normalize_person_name("李 桂芳") == normalize_person_name("李桂芳")
    assert normalize_person_name("張三") == normalize_person_name("张三")
    assert normalize_person_name("阿依古丽•买买提") == normalize_person_name("阿依古丽·买买提")
    assert normalize_person_name("李桂芳") != normalize_person_name("李桂")


def test_a_wrong_half_is_the_same_404(client: TestClient) -> None:
    """Wrong name, unknown phone, no petition at all: one answer, so that nothing tells
    whether a phone has petitions."""
    _file(client)
    wrong_name = client.post(URL, json={"phone": PHONE, "person_name": "李桂"})
    unknown_phone = client.post(URL, json={"phone": "13800000009", "person_name": NAME})
    nobody = client.post(URL, json={"phone": "13700000000", "person_name": "赵六"})
    assert wrong_name.status_code == unknown_phone.status_code == nobody.status_code == 404
    assert wrong_name.json() == unknown_phone.json() == nobody.json()
    body = wrong_name.json()
    assert body["code"] == "petition_not_found" and "没有找到" in body["message"]
    for resp in (wrong_name, unknown_phone):
        assert PHONE not in resp.text and NAME not in resp.text and "13800000009" not in resp.text


def test_number_with_another_phone_is_still_a_404(client: TestClient) -> None:
    number = _file(client)
    resp = client.post(URL, json={"petition_number": number, "phone": "13800000000"})
    assert resp.status_code == 404 and resp.json()["code"] == "petition_not_found"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"phone": PHONE}, "姓名"),
        ({"petition_number": "XF-20261123-0007", "phone": PHONE, "person_name": NAME}, "一种"),
        ({"person_name": NAME}, "手机号"),
        ({"phone": "1234", "person_name": NAME}, "手机号"),
        ({"phone": PHONE, "person_name": ""}, "姓名"),
        ({"phone": PHONE, "person_name": NAME, "id_number": "x"}, "不认识的字段"),
    ],
)
def test_bad_bodies_are_422_in_chinese(client: TestClient, payload: dict, words: str) -> None:
    resp = client.post(URL, json=payload)
    assert resp.status_code == 422
    assert resp.json()["code"] == "invalid_input" and words in resp.json()["message"]
    assert NAME not in resp.text and "1234" not in resp.json()["message"]


def test_rate_limited_per_sender_across_both_forms(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "lookup_rate_per_sender", 3)
    monkeypatch.setattr(settings, "lookup_rate_per_ip", 1000)
    number = _file(client)
    by_name = {"phone": PHONE, "person_name": NAME}
    assert client.post(URL, json=by_name, headers=_service("s-1")).status_code == 200
    assert client.post(URL, json={"petition_number": number, "phone": PHONE},
                       headers=_service("s-1")).status_code == 200  # fmt: skip
    walked = {"phone": "13800000000", "person_name": "张三"}
    assert client.post(URL, json=walked, headers=_service("s-1")).status_code == 404
    blocked = client.post(URL, json=by_name, headers=_service("s-1"))
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited" and "频繁" in blocked.json()["message"]
    assert client.post(URL, json=by_name, headers=_service("s-2")).status_code == 200


def test_rate_limited_per_ip_and_bad_bodies_count(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "lookup_rate_per_sender", 1000)
    monkeypatch.setattr(settings, "lookup_rate_per_ip", 3)
    for i in range(3):
        bad = {"phone": f"1{i}", "person_name": NAME}
        assert client.post(URL, json=bad).status_code == 422
    resp = client.post(URL, json={"phone": PHONE, "person_name": NAME})
    assert resp.status_code == 429


def test_nothing_personal_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    number = _file(client)
    caplog.set_level(logging.DEBUG)
    client.post(URL, json={"phone": PHONE, "person_name": NAME})
    client.post(URL, json={"phone": "13800000000", "person_name": "赵六"})
    client.post(URL, json={"petition_number": number, "phone": PHONE})
    client.post(URL, json={"phone": "bad", "person_name": NAME})
    assert "petition lookup by=name found=1" in caplog.text
    assert "petition lookup by=number found=1" in caplog.text
    for secret in (PHONE, NAME, "13800000000", "赵六", number):
        assert secret not in caplog.text


def test_openapi_shows_both_forms(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    op = schema["paths"]["/api/v1/petitions/lookup"]["post"]
    body_ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"petition_number", "phone", "person_name"} <= set(body["properties"])
    answer = op["responses"]["200"]["content"]["application/json"]["schema"]
    refs = {option["$ref"].rsplit("/", 1)[1] for option in answer["anyOf"]}
    assert refs == {"PetitionStatusRead", "PetitionLookupList"}
