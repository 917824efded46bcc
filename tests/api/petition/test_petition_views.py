"""Public petition endpoints: intake, idempotency (also under concurrency), lookup, errors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.models import AuditLog
from app.core.database import get_db
from app.core.workdays import calendar, today_shanghai
from app.petition.models import Petition
from app.status.models import Project

BODY = {
    "person_name": "李桂芳",
    "phone": "13912345678",
    "address": "幸福里小区5号楼1单元302",
    "description": "住了八年还没有房本，开发商联系不上。",
    "consent": True,
    "channel": "webchat",
}


def test_create_answers_number_and_deadline(client: TestClient, db: Session) -> None:
    """A new petition gets XF-<today>-NNNN, state 已受理 and a 5-working-day answer date."""
    r = client.post("/api/v1/petitions", json=BODY)
    assert r.status_code == 201, r.text
    body = r.json()
    today = today_shanghai()
    assert re.fullmatch(rf"XF-{today:%Y%m%d}-\d{{4}}", body["number"])
    assert body["status"] == "accepted" and body["status_label"] == "已受理"
    expected, provisional = calendar().add_working_days(today, 5)
    assert body["answer_due"] == expected.isoformat()
    assert body["provisional"] is provisional
    stored = db.scalar(select(Petition).where(Petition.number == body["number"]))
    assert stored is not None and stored.phone == "13912345678" and stored.consent is True
    audit = db.scalars(select(AuditLog).where(AuditLog.entity_id == body["number"])).all()
    assert [a.action for a in audit] == ["petition_created"]


def test_id_numbers_and_phones_in_the_description_are_masked(
    client: TestClient, db: Session
) -> None:
    """Whatever the resident typed into the description is stored with its ID numbers and
    phones masked (issue 13); the phone field itself stays whole for the clerk's call back."""
    typed = "我身份证 3702 0219 8001 0112 34，老伴电话139-8765-4321。（急！）"
    r = client.post("/api/v1/petitions", json={**BODY, "description": typed})
    assert r.status_code == 201, r.text
    stored = db.scalar(select(Petition).where(Petition.number == r.json()["number"]))
    assert stored is not None
    assert stored.description == "我身份证 **** **** **** **12 34，老伴电话139-****-4321。（急！）"
    assert stored.phone == "13912345678"


def test_numbers_follow_the_day_sequence(client: TestClient) -> None:
    """Two petitions of the same day get consecutive sequence numbers."""
    first = client.post("/api/v1/petitions", json=BODY).json()["number"]
    second = client.post("/api/v1/petitions", json={**BODY, "phone": "13800000001"}).json()[
        "number"
    ]
    assert first[:12] == second[:12]
    assert int(second[-4:]) == int(first[-4:]) + 1


def test_same_idempotency_key_returns_same_petition(client: TestClient, db: Session) -> None:
    """A retried request with the same key answers with the first petition, never a second."""
    headers = {"Idempotency-Key": "bot-abc-123"}
    r1 = client.post("/api/v1/petitions", json=BODY, headers=headers)
    r2 = client.post("/api/v1/petitions", json=BODY, headers=headers)
    assert r1.status_code == 201 and r2.status_code == 200
    assert r1.json() == r2.json()
    count = db.scalar(
        select(func.count()).select_from(Petition).where(Petition.idempotency_key == "bot-abc-123")
    )
    assert count == 1


def test_same_key_with_other_body_is_a_conflict(client: TestClient) -> None:
    """Reusing a key for different content is refused with a Chinese message."""
    headers = {"Idempotency-Key": "key-1"}
    assert client.post("/api/v1/petitions", json=BODY, headers=headers).status_code == 201
    r = client.post("/api/v1/petitions", json={**BODY, "description": "另一件事"}, headers=headers)
    assert r.status_code == 409 and "请求编号" in r.json()["message"]


@pytest.fixture
def committing_client(committing_sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    """A client whose requests each get a real session that commits (for concurrency)."""
    from app.main import app

    def _real() -> Iterator[Session]:
        session = committing_sessions()
        try:
            yield session
            session.commit()
        finally:
            session.close()

    app.dependency_overrides[get_db] = _real
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)


def test_concurrent_requests_with_one_key_make_one_petition(
    committing_client: TestClient, committing_sessions: sessionmaker[Session]
) -> None:
    """Eight simultaneous retries with one key: one petition, every answer its number."""
    headers = {"Idempotency-Key": "concurrent-key"}

    def post(_: int) -> tuple[int, str]:
        r = committing_client.post("/api/v1/petitions", json=BODY, headers=headers)
        return r.status_code, r.json().get("number", r.text)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, range(8)))
    assert {status for status, _ in results} <= {200, 201}
    assert [s for s, _ in results].count(201) == 1
    assert len({number for _, number in results}) == 1
    with committing_sessions() as s:
        assert s.scalar(select(func.count()).select_from(Petition)) == 1


def test_concurrent_distinct_petitions_get_distinct_numbers(
    committing_client: TestClient,
) -> None:
    """Simultaneous intakes never share a number."""

    def post(i: int) -> str:
        r = committing_client.post(
            "/api/v1/petitions",
            json={**BODY, "description": f"第{i}件"},
            headers={"Idempotency-Key": f"k-{i}"},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["number"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        numbers = list(pool.map(post, range(12)))
    assert len(set(numbers)) == 12


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"phone": "1234"}, "手机号"),
        ({"consent": False}, "同意"),
        ({"address": None}, "地址"),
        ({"person_name": ""}, "姓名"),
        ({"description": ""}, "情况描述"),
        ({"channel": "fax"}, "来源渠道"),
        ({"unknown": "x"}, "不认识的字段"),
    ],
)
def test_bad_input_gets_a_chinese_message(client: TestClient, change: dict, fragment: str) -> None:
    """Each kind of bad input is a 422 `{code, message}` naming the problem in Chinese."""
    body = {**BODY, **change}
    if change.get("address", "") is None:
        body.pop("address")
    r = client.post("/api/v1/petitions", json=body)
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_input"
    assert fragment in r.json()["message"]
    assert "13912345678" not in r.text


def test_phone_is_normalised(client: TestClient, db: Session) -> None:
    """Full-width digits, spaces and +86 are accepted and stored as 11 digits."""
    r = client.post("/api/v1/petitions", json={**BODY, "phone": "+86 １３９ 1234 5678"})
    assert r.status_code == 201
    stored = db.scalar(select(Petition).where(Petition.number == r.json()["number"]))
    assert stored is not None and stored.phone == "13912345678"


def test_unknown_project_code(client: TestClient) -> None:
    """A project code that does not exist is refused."""
    body = {k: v for k, v in BODY.items() if k != "address"} | {"project_code": "NOPE-1"}
    r = client.post("/api/v1/petitions", json=body)
    assert r.status_code == 422 and "项目编号" in r.json()["message"]


def test_known_project_code_links_the_project(client: TestClient, db: Session) -> None:
    """A petition by project code is linked to that project."""
    project = Project(code="QS-T01", name="测试家园", aliases=[], district="城关镇")
    db.add(project)
    db.flush()
    body = {k: v for k, v in BODY.items() if k != "address"} | {"project_code": "QS-T01"}
    r = client.post("/api/v1/petitions", json=body)
    assert r.status_code == 201
    stored = db.scalar(select(Petition).where(Petition.number == r.json()["number"]))
    assert stored is not None and stored.project_id == project.id


def test_body_size_is_capped(client: TestClient) -> None:
    """A huge body is refused with 413 before it is read."""
    r = client.post("/api/v1/petitions", json={**BODY, "description": "很" * 70_000})
    assert r.status_code == 413 and "太长" in r.json()["message"]


def test_lookup_needs_number_and_matching_phone(client: TestClient) -> None:
    """Status is shown only when the phone matches; otherwise a 404 with a Chinese message."""
    number = client.post("/api/v1/petitions", json=BODY).json()["number"]
    ok = client.post(
        "/api/v1/petitions/lookup", json={"petition_number": number.lower(), "phone": BODY["phone"]}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["number"] == number and ok.json()["status_label"] == "已受理"
    assert ok.json()["departments"] == []
    wrong = client.post(
        "/api/v1/petitions/lookup", json={"petition_number": number, "phone": "13800000000"}
    )
    assert wrong.status_code == 404 and "没有找到" in wrong.json()["message"]
    bad = client.post("/api/v1/petitions/lookup", json={"petition_number": "123", "phone": "1"})
    assert bad.status_code == 422


def test_nothing_personal_is_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """Logs of an intake carry neither the name nor the phone."""
    with caplog.at_level(logging.DEBUG):
        client.post("/api/v1/petitions", json=BODY)
        client.post("/api/v1/petitions", json={**BODY, "phone": "bad"})
    assert "13912345678" not in caplog.text and "李桂芳" not in caplog.text


def test_answer_due_across_national_day(db: Session) -> None:
    """Intake on 2026-09-30: five working days skip 国庆 and count the adjusted Saturday."""
    from app.petition import service
    from app.petition.schemas import PetitionCreate

    petition, created = service.create(db=db, data=PetitionCreate(**BODY), today=date(2026, 9, 30))
    assert created and petition.number.startswith("XF-20260930-")
    assert petition.answer_due == date(2026, 10, 13) and not petition.answer_due_provisional


def test_answer_due_beyond_known_calendar_is_provisional(db: Session) -> None:
    """A deadline in a year without a published arrangement is marked provisional."""
    from app.petition import service
    from app.petition.schemas import PetitionCreate

    petition, _ = service.create(db=db, data=PetitionCreate(**BODY), today=date(2026, 12, 28))
    assert petition.answer_due == date(2027, 1, 4)
    assert petition.answer_due_provisional is True


def test_address_links_the_matched_unit(client: TestClient, db: Session) -> None:
    """A petition by address is linked to the project and unit the address names."""
    from app.status.models import Unit

    project = Project(code="QS-T02", name="翠湖名邸", aliases=[], district="城关镇")
    db.add(project)
    db.flush()
    unit = Unit(project_id=project.id, building="3", unit="2", room="501", owner_name="某某")
    db.add(unit)
    db.flush()
    r = client.post("/api/v1/petitions", json={**BODY, "address": "翠湖名邸三号楼二单元五零一"})
    assert r.status_code == 201, r.text
    stored = db.scalar(select(Petition).where(Petition.number == r.json()["number"]))
    assert stored is not None
    assert (stored.project_id, stored.unit_id) == (project.id, unit.id)
