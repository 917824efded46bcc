"""POST /api/v1/lookup over HTTP: address and ID lookups, masking, validation, rate limits."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.security import hash_id_number, mask_name
from app.status.idcard import check_digit
from app.status.models import Project, Unit

URL = "/api/v1/lookup"


def _service(sender: str) -> dict[str, str]:
    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}


def _row(units: list[dict[str, str]], code: str, b: str, u: str, r: str) -> dict[str, str]:
    return next(
        x for x in units if (x["项目编号"], x["幢号"], x["单元"], x["房号"]) == (code, b, u, r)
    )


def _assert_no_full_id(response_text: str, units: list[dict[str, str]]) -> None:
    assert not any(u["身份证号"] in response_text for u in units)


def test_address_lookup_answers_with_unit_and_status(
    demo_client: TestClient, demo_units: list[dict[str, str]]
) -> None:
    row = _row(demo_units, "QS001", "3", "2", "501")
    resp = demo_client.post(URL, json={"address": "观象山庄三号楼二单元五零一"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["match"] == "unit"
    assert body["project"]["code"] == "QS001" and body["project"]["name"] == "观象山庄"
    assert body["status"]["code"] == "QS001"
    assert {b["code"] for b in body["status"]["open_blockers"]} == {
        "fire_acceptance",
        "civil_defense",
    }
    unit = body["unit"]
    assert (unit["building"], unit["unit"], unit["room"]) == ("3", "2", "501")
    assert unit["transfer_status"] == "not_started" and unit["transfer_status_label"] == "未办理"
    # No owner data at all: an address proves nothing (issue 13).
    assert set(unit) == {"building", "unit", "room", "transfer_status", "transfer_status_label"}
    _assert_no_full_id(resp.text, demo_units)
    assert row["业主姓名"] not in resp.text
    assert row["身份证号"][-4:] not in resp.text and mask_name(row["业主姓名"]) not in resp.text


def test_project_ambiguous_and_none_shapes(demo_client: TestClient) -> None:
    project = demo_client.post(URL, json={"address": "滨河湾二期"}).json()
    assert project["match"] == "project" and project["project"]["code"] == "QS005"
    assert "unit" not in project and project["status"]["code"] == "QS005"

    ambiguous = demo_client.post(URL, json={"address": "阳光花2号楼1单元301"}).json()
    assert ambiguous["match"] == "ambiguous"
    codes = [c["project"]["code"] for c in ambiguous["candidates"]]
    assert set(codes[:2]) == {"QS002", "QS003"}
    first = ambiguous["candidates"][0]
    assert first["unit"] == {"building": "2", "unit": "1", "room": "301"}
    assert 0 < first["score"] <= 100
    assert "status" not in ambiguous

    none = demo_client.post(URL, json={"address": "火星基地7号楼"}).json()
    assert none["match"] == "none"
    assert "小区" in none["message"]


def test_id_lookup_needs_both_id_and_name(
    demo_client: TestClient, demo_units: list[dict[str, str]]
) -> None:
    row = _row(demo_units, "QS001", "3", "2", "501")
    ok = demo_client.post(URL, json={"id_number": row["身份证号"], "person_name": row["业主姓名"]})
    assert ok.status_code == 200
    body = ok.json()
    assert body["match"] == "unit" and body["project"]["code"] == "QS001"
    assert (body["unit"]["building"], body["unit"]["unit"], body["unit"]["room"]) == (
        "3",
        "2",
        "501",
    )
    _assert_no_full_id(ok.text, demo_units)

    other = next(u for u in demo_units if u["业主姓名"] != row["业主姓名"])
    wrong_name = demo_client.post(
        URL, json={"id_number": row["身份证号"], "person_name": other["业主姓名"]}
    ).json()
    first17 = "99010119700101000"
    unknown_id = demo_client.post(
        URL, json={"id_number": first17 + check_digit(first17), "person_name": row["业主姓名"]}
    ).json()
    right_name_other_id = demo_client.post(
        URL, json={"id_number": other["身份证号"], "person_name": row["业主姓名"]}
    ).json()
    # The same answer whichever half was wrong: nothing tells an ID walker what matched.
    assert wrong_name == unknown_id == right_name_other_id
    assert wrong_name["match"] == "none" and "身份证号和姓名" in wrong_name["message"]


def test_owner_of_two_homes_gets_both_as_candidates(
    demo_client: TestClient, demo_db: Session, demo_units: list[dict[str, str]]
) -> None:
    row = _row(demo_units, "QS001", "3", "2", "501")
    mine = demo_db.scalars(
        select(Unit).where(Unit.id_hash == hash_id_number(row["身份证号"]))
    ).one()
    second = demo_db.scalars(
        select(Unit).where(Unit.room == "602", Unit.project_id != mine.project_id).limit(1)
    ).one()
    second.id_hash, second.id_last4, second.owner_name = (
        mine.id_hash,
        mine.id_last4,
        row["业主姓名"],
    )
    demo_db.flush()
    body = demo_client.post(
        URL, json={"id_number": row["身份证号"], "person_name": row["业主姓名"]}
    ).json()
    assert body["match"] == "ambiguous"
    places = {(c["project"]["code"], c["unit"]["room"]) for c in body["candidates"]}
    assert places == {("QS001", "501"), (_code_of(demo_db, second), "602")}
    assert row["业主姓名"] not in str(body)


def _code_of(db: Session, unit: Unit) -> str:
    project = db.get(Project, unit.project_id)
    assert project is not None
    return project.code


def test_a_co_owner_listed_in_the_ledger_may_ask(
    demo_client: TestClient, demo_db: Session, demo_units: list[dict[str, str]]
) -> None:
    row = _row(demo_units, "QS001", "3", "2", "501")
    digest = hash_id_number(row["身份证号"])
    unit = demo_db.scalars(select(Unit).where(Unit.id_hash == digest)).one()
    unit.owner_name = f"{row['业主姓名']}、欧阳春"
    demo_db.flush()
    for name in (row["业主姓名"], "欧阳春", f"{row['业主姓名']}、欧阳春"):
        body = demo_client.post(URL, json={"id_number": row["身份证号"], "person_name": name})
        assert body.json()["match"] == "unit", name
    stranger = demo_client.post(URL, json={"id_number": row["身份证号"], "person_name": "欧阳"})
    assert stranger.json()["match"] == "none"


def test_lower_case_x_is_accepted(
    demo_client: TestClient, demo_units: list[dict[str, str]]
) -> None:
    row = next(u for u in demo_units if u["身份证号"].endswith("X"))
    resp = demo_client.post(
        URL, json={"id_number": row["身份证号"].lower(), "person_name": row["业主姓名"]}
    )
    body = resp.json()
    assert body["match"] == "unit"
    assert body["project"]["code"] == row["项目编号"]
    assert body["unit"]["room"] == row["房号"]
    assert "id_number" not in body["unit"] and "owner_name" not in body["unit"]


def test_bad_check_digit_is_a_422_in_chinese(
    demo_client: TestClient, demo_units: list[dict[str, str]]
) -> None:
    good = demo_units[0]["身份证号"]
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    resp = demo_client.post(URL, json={"id_number": bad, "person_name": demo_units[0]["业主姓名"]})
    assert resp.status_code == 422
    body = resp.json()
    assert body["code"] == "invalid_input"
    assert "校验位" in body["message"]
    assert bad not in resp.text and good not in resp.text


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"id_number": "12345"}, "18位"),
        ({"address": "观象山庄", "id_number": "11010519491231002X", "person_name": "张三"}, "一种"),
        ({"id_number": "11010519491231002X"}, "姓名"),
        ({}, "地址"),
        ({"address": "观象山庄", "phone": "13800000000"}, "不认识的字段"),
        ({"address": "观" * 121}, "太长"),
        ({"address": ""}, "不能为空"),
    ],
)
def test_bad_requests_are_422_with_a_reason(
    demo_client: TestClient, payload: dict[str, Any], words: str
) -> None:
    resp = demo_client.post(URL, json=payload)
    assert resp.status_code == 422
    assert words in resp.json()["message"]


def test_rate_limit_per_sender(demo_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "lookup_rate_per_sender", 3)
    monkeypatch.setattr(settings, "lookup_rate_per_ip", 1000)
    for _ in range(3):
        resp = demo_client.post(URL, json={"address": "观象山庄"}, headers=_service("s-1"))
        assert resp.status_code == 200
    blocked = demo_client.post(URL, json={"address": "观象山庄"}, headers=_service("s-1"))
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "rate_limited"
    assert "频繁" in blocked.json()["message"]
    # another conversation is not held back by the first one
    other = demo_client.post(URL, json={"address": "观象山庄"}, headers=_service("s-2"))
    assert other.status_code == 200


def test_the_bot_is_limited_per_resident_never_per_its_ip(
    demo_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13's probe: 7 residents × 20 lookups through the action server (one IP), then
    an eighth resident is answered, not 429; a browser without the service token is still
    counted by its IP."""
    monkeypatch.setattr(settings, "lookup_rate_per_sender", 20)
    monkeypatch.setattr(settings, "lookup_rate_per_ip", 120)
    for i in range(7):
        for _ in range(20):
            resp = demo_client.post(URL, json={"address": "观象山庄"}, headers=_service(f"s-{i}"))
            assert resp.status_code == 200
    assert (
        demo_client.post(URL, json={"address": "观象山庄"}, headers=_service("s-0")).status_code
        == 429
    )
    new = demo_client.post(URL, json={"address": "观象山庄"}, headers=_service("s-new"))
    assert new.status_code == 200
    monkeypatch.setattr(settings, "lookup_rate_per_ip", 4)
    for _ in range(4):
        assert demo_client.post(URL, json={"address": "观象山庄"}).status_code == 200
    blocked = demo_client.post(URL, json={"address": "观象山庄"})
    assert blocked.status_code == 429 and "频繁" in blocked.json()["message"]


def test_invalid_ids_count_against_the_limit(
    demo_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "lookup_rate_per_sender", 3)
    for i in range(3):
        bad = {"id_number": f"11010519491231{i:03d}0", "person_name": "张三"}
        assert demo_client.post(URL, json=bad, headers=_service("walker")).status_code == 422
    good = {"id_number": "11010519491231002X", "person_name": "张三"}
    assert demo_client.post(URL, json=good, headers=_service("walker")).status_code == 429


def test_bad_service_token_is_refused(demo_client: TestClient) -> None:
    resp = demo_client.post(
        URL,
        json={"address": "观象山庄"},
        headers={"Authorization": "Service wrong", "X-Sender-Id": "s"},
    )
    assert resp.status_code == 401


def test_nothing_personal_is_logged(
    demo_client: TestClient, demo_units: list[dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    row = _row(demo_units, "QS001", "3", "2", "501")
    caplog.set_level(logging.DEBUG)
    demo_client.post(URL, json={"id_number": row["身份证号"], "person_name": row["业主姓名"]})
    demo_client.post(URL, json={"id_number": row["身份证号"][:17] + "0", "person_name": "张三"})
    demo_client.post(URL, json={"address": "观象山庄3号楼2单元501"}, headers=_service("s-9"))
    assert "lookup by=id match=unit" in caplog.text
    for secret in (row["身份证号"], row["身份证号"][:17], row["业主姓名"], "观象山庄", "s-9"):
        assert secret not in caplog.text
