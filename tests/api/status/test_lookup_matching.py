"""Address lookups that must not answer more confidently than the ledger allows (both backends).

A unit the ledger lacks is said so (with what exists), an unknown project name is `none` (never
another project's unit of the same number), a name that fits two projects is `ambiguous`,
street addresses and district words help, and Traditional characters match like simplified.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.status.address import normalize_part, normalize_text, to_simplified
from app.status.matching import lookup_address, name_stem
from app.status.models import Project, Unit

GX = "QS001"  # 观象山庄: buildings 1–5, units 1–3, rooms 101–602; 城关镇, 观象路18号


def _codes(answer: dict[str, Any]) -> set[str]:
    return {c["project"]["code"] for c in answer.get("candidates", [])}


def _project(db: Session, code: str) -> Project:
    project = db.scalar(select(Project).where(Project.code == code))
    assert project is not None
    return project


# --- a unit the ledger does not have ------------------------------------------------------

NOT_IN_LEDGER = [
    # typed, expected hint, expected requested (building, unit, room)
    ("观象山庄9号楼1单元101", "观象山庄有1–5号楼", ("9", "1", "101")),
    ("观象山庄九号楼一单元一零一", "观象山庄有1–5号楼", ("9", "1", "101")),
    ("观象山庄9号楼", "观象山庄有1–5号楼", ("9", None, None)),
    ("观象山庄3号楼9单元101", "3号楼有1–3单元", ("3", "9", "101")),
    ("观象山庄3号楼2单元901", "3号楼2单元共12户，房号从101到602", ("3", "2", "901")),
    ("观象山庄9901", "观象山庄有1–5号楼", (None, None, "9901")),
    ("金都大厦C座1502", "金都大厦有A、B座", ("C", None, "1502")),
    ("翠湖苑8-501", "翠湖苑有1–6号楼", ("8", None, "501")),
]


@pytest.mark.parametrize(
    ("text", "hint", "requested"), NOT_IN_LEDGER, ids=[r[0] for r in NOT_IN_LEDGER]
)
def test_a_unit_missing_from_the_ledger_is_said_so(
    demo_db: Session, text: str, hint: str, requested: tuple[str | None, ...]
) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "project"
    assert answer["unit_not_found"] is True
    assert answer["units_hint"] == hint
    assert "没有查到" in answer["message"] and hint in answer["message"]
    assert answer["status"]["code"] == answer["project"]["code"]
    assert "unit" not in answer
    got = answer["requested"]
    assert (got["building"], got["unit"], got["room"]) == requested
    assert got["label"] and got["label"] in answer["message"]


def test_a_found_unit_says_it_was_found(demo_db: Session) -> None:
    found = lookup_address(db=demo_db, address="观象山庄3号楼2单元501")
    assert found["match"] == "unit" and found["unit_not_found"] is False
    assert "units_hint" not in found
    assert found["requested"] == {
        "building": "3",
        "unit": "2",
        "room": "501",
        "label": "3号楼2单元501室",
    }
    plain = lookup_address(db=demo_db, address="观象山庄")
    assert plain["match"] == "project" and plain["unit_not_found"] is False
    assert "requested" not in plain and "message" not in plain


def test_incomplete_but_existing_parts_are_not_a_miss(demo_db: Session) -> None:
    """3号楼 exists: the answer asks for the room; 501 exists in many buildings: it asks which."""
    building = lookup_address(db=demo_db, address="观象山庄3号楼")
    assert building["unit_not_found"] is False and "补充房号" in building["message"]
    several = lookup_address(db=demo_db, address="观象山庄501")
    assert several["unit_not_found"] is False and "补充" in several["message"]


def test_a_project_without_units_in_the_ledger(demo_db: Session) -> None:
    project = _project(demo_db, "QS028")
    demo_db.execute(delete(Unit).where(Unit.project_id == project.id))
    answer = lookup_address(db=demo_db, address="鑫源商住楼1号楼304")
    assert answer["match"] == "project" and answer["unit_not_found"] is True
    assert "鑫源商住楼" in answer["units_hint"]


# --- a project name the ledger does not know -----------------------------------------------

UNKNOWN_NAMES = [
    "幸福花园2号楼1单元301",
    "月亮湾3号楼101",
    "阳光城2号楼1单元301",
    "金都花园A座1502",
    "安康新村1号楼1单元101",  # 康居新村 shares 康 and 新村
    "滨河湾三期3号楼1单元101",  # phases 一期 and 二期 only
    "新华小区1号楼1单元101",
    "明珠花园5号楼2单元602",
    "桃源居2-1-301",
    "绿城玫瑰园1号楼1单元101",
    "我家在天鹅湖小区3号楼2单元501",
    "3号楼2单元501，海棠湾小区",
    "城关镇幸福花园2号楼1单元301",
    "觀瀾花園2號樓1單元301",
]


@pytest.mark.parametrize("text", UNKNOWN_NAMES)
def test_an_unknown_project_name_is_none(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "none", answer.get("candidates") or answer.get("project")
    assert "没有查到" in answer["message"]
    assert "candidates" not in answer and "project" not in answer and "status" not in answer


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("幸福小区3号楼1单元201", "QS009"),  # 幸福里小区 without 里
        ("观山庄3号楼2单元501", GX),  # 观象山庄 without 象
        ("东花园1号楼1单元101", "QS016"),  # 东方花园 without 方
    ],
)
def test_a_name_missing_a_distinctive_character_is_offered_not_picked(
    demo_db: Session, text: str, code: str
) -> None:
    """The rest may be another project's name: the bot asks '是不是…' with a button."""
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "ambiguous"
    assert answer["candidates"][0]["project"]["code"] == code
    assert answer["candidates"][0]["unit"] is not None
    assert answer["candidates"][0]["score"] < 70


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("观象山3号楼2单元501", GX),  # the generic end cut short
        ("观象山城3号楼2单元501", GX),  # … or wrong
        ("观像山庄3号楼2单元501", GX),  # a homophone
        ("锦绣华苑2号楼1单元101", "QS006"),
    ],
)
def test_typos_in_the_generic_part_still_match(demo_db: Session, text: str, code: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit" and answer["project"]["code"] == code


@pytest.mark.parametrize("text", ["3-2-501", "我家3号楼2单元501", "请问3号楼2单元501的房本"])
def test_without_a_name_the_projects_having_the_unit_are_offered(
    demo_db: Session, text: str
) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "ambiguous"
    assert {GX, "QS002", "QS003"} <= _codes(answer)
    assert all(c["unit"]["room"] == "501" for c in answer["candidates"])


def test_stems_drop_the_generic_end_of_names() -> None:
    assert name_stem("观象山庄") == "观象"
    assert name_stem("滨河湾1期") == "滨河"
    assert name_stem("幸福里小区") == "幸福里"
    assert name_stem("锦华苑") == "锦"
    assert name_stem("桂花园") == "桂"
    assert name_stem("书香门第") == "书香门第"


# --- one name, two projects ----------------------------------------------------------------


def _add_alias(db: Session, code: str, alias: str) -> None:
    project = _project(db, code)
    project.aliases = [*project.aliases, alias]
    db.flush()


def test_an_alias_that_starts_another_name_is_ambiguous(demo_db: Session) -> None:
    """'滨河湾' as an alias of 滨河湾一期 is also the start of 滨河湾二期: both have 3-1-101."""
    _add_alias(demo_db, "QS004", "滨河湾")
    answer = lookup_address(db=demo_db, address="滨河湾3号楼1单元101")
    assert answer["match"] == "ambiguous"
    assert _codes(answer) == {"QS004", "QS005"}
    assert answer["candidates"][0]["project"]["code"] == "QS004"  # the full alias ranks first
    for c in answer["candidates"]:
        assert c["unit"] == {"building": "3", "unit": "1", "room": "101"}
    scores = [c["score"] for c in answer["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_an_alias_stays_confident_when_only_its_project_has_the_unit(demo_db: Session) -> None:
    _add_alias(demo_db, "QS004", "滨河湾")
    answer = lookup_address(db=demo_db, address="滨河湾5号楼1单元101")  # 滨河湾二期 has 1–4号楼
    assert answer["match"] == "unit" and answer["project"]["code"] == "QS004"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("滨河湾一期3号楼1单元101", "QS004"),
        ("滨河湾花园一期3号楼1单元101", "QS004"),
        ("滨河湾二期3号楼1单元101", "QS005"),
        ("滨河湾花园二期3-1-101", "QS005"),
    ],
)
def test_full_names_and_aliases_stay_confident(demo_db: Session, text: str, code: str) -> None:
    _add_alias(demo_db, "QS004", "滨河湾")
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit" and answer["project"]["code"] == code


@pytest.mark.parametrize("text", ["滨河湾3号楼1单元101", "滨河湾花园3号楼1单元101", "滨河湾"])
def test_a_name_fitting_two_phases_is_ambiguous(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "ambiguous" and _codes(answer) == {"QS004", "QS005"}


@pytest.mark.parametrize(
    ("text", "code", "room"),
    [
        ("滨河湾5号楼1单元301", "QS004", "301"),  # 二期 has 1–4号楼
        ("滨河湾1号楼1单元801", "QS005", "801"),  # 一期 has six floors
        ("俺家滨河湾花园5-1-301", "QS004", "301"),
    ],
)
def test_when_one_of_two_fitting_projects_has_the_unit_it_is_that_one(
    demo_db: Session, text: str, code: str, room: str
) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit" and answer["project"]["code"] == code
    assert answer["unit"]["room"] == room and answer["unit_not_found"] is False


# --- street addresses and district words ---------------------------------------------------


@pytest.mark.parametrize(
    "text", ["观象路18号", "青松县城关镇观象路18号", "城关镇观象路18号", "觀象路十八號"]
)
def test_the_street_address_alone_finds_the_project(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "project" and answer["project"]["code"] == GX


@pytest.mark.parametrize("text", ["观象路18号3-2-501", "青松县城关镇观象路18号3号楼2单元501室"])
def test_the_street_address_with_the_unit_finds_the_unit(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit" and answer["project"]["code"] == GX
    assert answer["unit"]["room"] == "501"


@pytest.mark.parametrize("text", ["观象路20号", "观象路118号3号楼2单元501"])
def test_another_house_number_is_not_the_project(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "none" and "没有查到" in answer["message"]


@pytest.mark.parametrize(
    "text",
    ["城关镇观象山庄3号楼2单元501", "城关镇观像山庄3号楼2单元501", "青松县城关镇观象小区3-2-501"],
)
def test_a_district_word_with_the_name_still_matches(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit" and answer["project"]["code"] == GX


@pytest.mark.parametrize("text", ["城关镇", "青松县城关镇", "河西街道"])
def test_a_district_alone_is_not_enough(demo_db: Session, text: str) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "none" and "没有查到" in answer["message"]


def test_a_district_with_a_unit_offers_only_that_districts_projects(demo_db: Session) -> None:
    answer = lookup_address(db=demo_db, address="城关镇3号楼2单元501")
    assert answer["match"] == "ambiguous"
    districts = {_project(demo_db, code).district for code in _codes(answer)}
    assert districts == {"城关镇"} and GX in _codes(answer)
    assert "QS003" not in _codes(answer)  # 阳光花苑 (河西街道) has 3-2-501 too


def test_the_district_ranks_close_names(demo_db: Session) -> None:
    """阳光花园 and 阳光花苑 both fit '阳光花': the project of the named district ranks first."""
    for district, code in (("河西街道", "QS003"), ("城关镇", "QS002")):
        answer = lookup_address(db=demo_db, address=f"{district}阳光花2号楼1单元301")
        assert answer["match"] == "ambiguous"
        assert answer["candidates"][0]["project"]["code"] == code


def test_the_district_tells_two_projects_of_one_name_apart(demo_db: Session) -> None:
    twin = Project(code="T-TWIN", name="观象山庄", aliases=[], district="河西街道",
                   address="青松县河西街道河西路1号")  # fmt: skip
    demo_db.add(twin)
    demo_db.flush()
    demo_db.add(Unit(project_id=twin.id, building="3", unit="2", room="501", owner_name="某某"))
    demo_db.flush()
    both = lookup_address(db=demo_db, address="观象山庄3号楼2单元501")
    assert both["match"] == "ambiguous" and _codes(both) == {GX, "T-TWIN"}
    here = lookup_address(db=demo_db, address="河西街道观象山庄3号楼2单元501")
    assert here["match"] == "unit" and here["project"]["code"] == "T-TWIN"
    there = lookup_address(db=demo_db, address="城关镇观象山庄3号楼2单元501")
    assert there["match"] == "unit" and there["project"]["code"] == GX


# --- Traditional characters, full-width digits, Chinese numerals --------------------------


@pytest.mark.parametrize(
    ("text", "code", "unit"),
    [
        ("觀象山莊3號樓2單元501", GX, ("3", "2", "501")),
        ("觀象山莊三號樓貳單元伍零壹", GX, ("3", "2", "501")),
        ("觀象山莊３號樓２單元５０１室", GX, ("3", "2", "501")),
        ("觀象新村3棟2單元501", GX, ("3", "2", "501")),
        ("濱河灣二期3號樓2單元501", "QS005", ("3", "2", "501")),
        ("錦繡華庭2號樓1單元101", "QS006", ("2", "1", "101")),
        ("金都大廈A座1502", "QS007", ("A", "", "1502")),
    ],
)
def test_traditional_characters_match_like_simplified(
    demo_db: Session, text: str, code: str, unit: tuple[str, str, str]
) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == "unit", answer.get("message")
    assert answer["project"]["code"] == code
    assert (answer["unit"]["building"], answer["unit"]["unit"], answer["unit"]["room"]) == unit


def test_traditional_forms_normalise_to_the_simplified_ones() -> None:
    assert to_simplified("觀象山莊") == "观象山庄"
    assert normalize_text("觀象山莊3號樓2單元501") == normalize_text("观象山庄3号楼2单元501")
    assert normalize_part("3號樓") == "3" and normalize_part("二單元") == "2"
    assert normalize_text("觀象山莊三號樓") == "观象山庄3号楼"


def test_a_traditional_name_in_the_ledger_matches_a_simplified_one(demo_db: Session) -> None:
    _add_alias(demo_db, GX, "觀瀾苑")
    answer = lookup_address(db=demo_db, address="观澜苑3号楼2单元501")
    assert answer["match"] == "unit" and answer["project"]["code"] == GX
