"""Address forms residents type, looked up against the shipped demo ledger (both backends).

Each row: what was typed, the expected `match`, the expected project code(s) and unit
(building, unit, room) — for `ambiguous` rows, the codes that must lead the candidates.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy.orm import Session

from app.status.matching import lookup_address, project_index

GX = "QS001"  # 观象山庄, old names 观象小区 and 观象新村, 青松县城关镇观象路18号
GX_3_2_501 = ("3", "2", "501")

Row = tuple[str, str, tuple[str, ...], tuple[str, str, str] | None]

TABLE: list[Row] = [
    # --- one home, typed many ways -----------------------------------------------------
    ("观象山庄3号楼2单元501", "unit", (GX,), GX_3_2_501),
    ("观象山庄三号楼二单元五零一", "unit", (GX,), GX_3_2_501),
    ("观象山庄三号楼二单元五百零一", "unit", (GX,), GX_3_2_501),
    ("观象山庄3-2-501", "unit", (GX,), GX_3_2_501),
    ("观象山庄3—2—501", "unit", (GX,), GX_3_2_501),
    ("观象山庄3-2-501室", "unit", (GX,), GX_3_2_501),
    ("观象山庄3栋2单元501室", "unit", (GX,), GX_3_2_501),
    ("观象山庄3幢2单元501户", "unit", (GX,), GX_3_2_501),
    ("观象山庄3号2单元501号", "unit", (GX,), GX_3_2_501),
    ("观象山庄3#楼2单元501", "unit", (GX,), GX_3_2_501),
    ("观象山庄3号楼2门501", "unit", (GX,), GX_3_2_501),
    ("观象山庄3号楼2单元5楼501", "unit", (GX,), GX_3_2_501),
    ("观象山庄３号楼２单元５０１", "unit", (GX,), GX_3_2_501),
    ("观象山庄 3 号楼 2 单元 501", "unit", (GX,), GX_3_2_501),
    ("观象山庄小区3号楼2单元501", "unit", (GX,), GX_3_2_501),
    ("青松县城关镇观象山庄3号楼2单元501", "unit", (GX,), GX_3_2_501),
    ("观象路18号3号楼2单元501", "unit", (GX,), GX_3_2_501),
    ("观象小区3号楼2单元501", "unit", (GX,), GX_3_2_501),
    ("观象新村3-2-501", "unit", (GX,), GX_3_2_501),
    ("观像山庄3号楼2单元501", "unit", (GX,), GX_3_2_501),  # homophone
    ("观象山装3号楼2单元501", "unit", (GX,), GX_3_2_501),  # homophone typo
    ("观象山城3号楼2单元501", "unit", (GX,), GX_3_2_501),  # one character wrong
    ("我家在观象山庄3号楼2单元501，为啥办不了证", "unit", (GX,), GX_3_2_501),
    ("您好，请问观象山庄3号楼2单元501室的房本什么时候能办", "unit", (GX,), GX_3_2_501),
    # --- the project only ---------------------------------------------------------------
    ("观象山庄", "project", (GX,), None),
    ("我住观象山庄", "project", (GX,), None),
    ("观象山庄 3 号楼", "project", (GX,), None),
    ("观象山庄3号楼2单元", "project", (GX,), None),
    ("观象山庄3号楼2单元901", "project", (GX,), None),  # no such room
    ("观象山庄501", "project", (GX,), None),  # 501 in many buildings
    ("滨河湾二期", "project", ("QS005",), None),
    ("滨河湾2期", "project", ("QS005",), None),
    # --- other projects: numbers, letters, phases, aliases, no 单元 ----------------------
    ("建安小区十二号楼302", "unit", ("QS010",), ("12", "1", "302")),
    ("建安新村12号楼1单元302", "unit", ("QS010",), ("12", "1", "302")),
    ("金都大厦A座1502", "unit", ("QS007",), ("A", "", "1502")),
    ("金都大厦a座1502", "unit", ("QS007",), ("A", "", "1502")),
    ("金都大厦Ａ座１５０２", "unit", ("QS007",), ("A", "", "1502")),
    ("金都大厦A-1502", "unit", ("QS007",), ("A", "", "1502")),
    ("金都商住楼B座1单元1502", "unit", ("QS007",), ("B", "", "1502")),
    ("滨河湾二期3号楼2单元501", "unit", ("QS005",), ("3", "2", "501")),
    ("滨河湾2期3-2-501", "unit", ("QS005",), ("3", "2", "501")),
    ("滨河湾一期3号楼2单元501", "unit", ("QS004",), ("3", "2", "501")),
    ("阳光花园2号楼1单元301", "unit", ("QS002",), ("2", "1", "301")),
    ("阳光花苑2号楼1单元301", "unit", ("QS003",), ("2", "1", "301")),
    ("阳光小区2-1-301", "unit", ("QS002",), ("2", "1", "301")),
    ("水泥厂家属院3号楼201", "unit", ("QS008",), ("3", "1", "201")),
    ("翠湖苑6-501", "unit", ("QS008",), ("6", "1", "501")),
    ("青松壹号1号楼1502", "unit", ("QS019",), ("1", "1", "1502")),
    ("青松一号1号楼1502", "unit", ("QS019",), ("1", "1", "1502")),
    ("锦秀华庭2号楼1单元101", "unit", ("QS006",), ("2", "1", "101")),
    ("世纪花园1号楼1单元101", "unit", ("QS024",), ("1", "1", "101")),
    ("凤凰城3期2号楼2单元602", "unit", ("QS020",), ("2", "2", "602")),
    ("鑫源商住楼304", "unit", ("QS028",), ("1", "", "304")),
    ("东方家园1-1-101", "unit", ("QS016",), ("1", "1", "101")),
    ("幸福里3号楼1单元201", "unit", ("QS009",), ("3", "1", "201")),
    ("河西街道紫荆苑5号楼1单元602", "unit", ("QS011",), ("5", "1", "602")),
    ("紫荆苑5号楼一单元六零二", "unit", ("QS011",), ("5", "1", "602")),
    ("龙泉雅居2号楼2单元402室", "unit", ("QS018",), ("2", "2", "402")),
    ("QS018 2-2-402", "unit", ("QS018",), ("2", "2", "402")),  # the project code
    # --- several candidates ---------------------------------------------------------------
    ("阳光花圆2号楼1单元301", "ambiguous", ("QS002", "QS003"), ("2", "1", "301")),
    ("阳光花2号楼1单元301", "ambiguous", ("QS002", "QS003"), ("2", "1", "301")),
    ("滨河湾3号楼2单元501", "ambiguous", ("QS004", "QS005"), ("3", "2", "501")),
    ("3幢2单元501户", "ambiguous", (GX, "QS002", "QS003"), ("3", "2", "501")),
    ("3-2-501", "ambiguous", (GX, "QS002", "QS003"), ("3", "2", "501")),
    # --- nothing --------------------------------------------------------------------------
    ("为啥办不了证", "none", (), None),
    ("你好", "none", (), None),
    ("北京市朝阳区建国路88号", "none", (), None),
    ("火星基地7号楼", "none", (), None),
]


def _unit_tuple(unit: dict[str, Any] | None) -> tuple[str, str, str] | None:
    return None if unit is None else (unit["building"], unit["unit"], unit["room"])


def test_table_is_large_and_covers_every_kind() -> None:
    assert len(TABLE) >= 40
    assert {kind for _, kind, _, _ in TABLE} == {"unit", "project", "ambiguous", "none"}
    assert len({text for text, *_ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("text", "kind", "codes", "unit"), TABLE, ids=[r[0] for r in TABLE])
def test_address_form(
    demo_db: Session,
    text: str,
    kind: str,
    codes: tuple[str, ...],
    unit: tuple[str, str, str] | None,
) -> None:
    answer = lookup_address(db=demo_db, address=text)
    assert answer["match"] == kind, answer.get("message") or answer.get("candidates")
    if kind in ("unit", "project"):
        assert answer["project"]["code"] == codes[0]
        assert answer["status"]["code"] == codes[0]
        assert _unit_tuple(answer.get("unit")) == unit
    elif kind == "ambiguous":
        candidates = answer["candidates"]
        assert answer["message"]
        scores = [c["score"] for c in candidates]
        assert scores == sorted(scores, reverse=True)
        assert {c["project"]["code"] for c in candidates[: len(codes)]} == set(codes)
        for c in candidates:
            if c["project"]["code"] in codes:
                assert _unit_tuple(c["unit"]) == unit
            assert set(c) == {"project", "unit", "score"}
    else:
        assert answer["message"]
        assert "project" not in answer and "candidates" not in answer


def test_project_answer_says_what_is_missing(demo_db: Session) -> None:
    unknown = lookup_address(db=demo_db, address="观象山庄3号楼2单元901")
    assert "901" in unknown["message"]
    several = lookup_address(db=demo_db, address="观象山庄501")
    assert "补充" in several["message"]
    plain = lookup_address(db=demo_db, address="观象山庄")
    assert "message" not in plain


def test_alias_change_is_picked_up_without_restart(demo_db: Session) -> None:
    from sqlalchemy import select

    from app.status.models import Project

    index = project_index.get(demo_db)
    assert project_index.get(demo_db) is index  # unchanged table: no rebuild
    assert lookup_address(db=demo_db, address="松涛苑")["match"] == "none"
    project = demo_db.scalar(select(Project).where(Project.code == GX))
    assert project is not None
    project.aliases = [*project.aliases, "松涛苑"]
    demo_db.flush()
    answer = lookup_address(db=demo_db, address="松涛苑3-2-501")
    assert answer["match"] == "unit" and answer["project"]["code"] == GX


@pytest.mark.parametrize("text", ["阳光花圆2号楼1单元301", "滨河湾3号楼2单元501", "3-2-501"])
def test_a_chosen_candidate_finds_its_home(demo_db: Session, text: str) -> None:
    """The bot offers candidates as buttons whose text is typed back: each must resolve."""
    for c in lookup_address(db=demo_db, address=text)["candidates"]:
        u = c["unit"]
        label = f"{c['project']['name']}{u['building']}号楼"
        label += f"{u['unit']}单元" if u["unit"] else ""
        again = lookup_address(db=demo_db, address=f"{label}{u['room']}室")
        assert again["match"] == "unit", label
        assert again["project"]["code"] == c["project"]["code"]
        assert _unit_tuple(again["unit"]) == _unit_tuple(u)


def test_any_text_gets_a_well_formed_answer(demo_db: Session) -> None:
    """Whatever residents paste (numerals, symbols, letters, emoji), the answer is well formed."""
    rng = random.Random(7)
    pool = (
        "观象山庄阳光花园苑滨河湾期一二三十百千零两幺号楼栋幢座单元门室户层-—#，。 0123456789AＢ😀"
    )
    for _ in range(150):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 60)))
        answer = lookup_address(db=demo_db, address=text)
        assert answer["match"] in ("unit", "project", "ambiguous", "none")
        if answer["match"] in ("ambiguous", "none"):
            assert answer["message"]
