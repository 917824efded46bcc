"""Normalising what residents type and parsing building/unit/room (no database)."""

from __future__ import annotations

import pytest

from app.status.address import (
    cn_digits_to_arabic,
    compact,
    normalize_part,
    normalize_text,
    parse_unit,
    to_halfwidth,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("五零一", "501"),
        ("十二", "12"),
        ("二十三", "23"),
        ("五百零一", "501"),
        ("一千五百零二", "1502"),
        ("百", "百"),  # not a number on its own
        ("花园", "花园"),
    ],
)
def test_chinese_numerals(raw: str, expected: str) -> None:
    assert cn_digits_to_arabic(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3号楼", "3"),
        ("二单元", "2"),
        ("501室", "501"),
        ("Ａ座", "A"),
        ("03", "3"),
        ("十二幢", "12"),
        ("叁号楼", "3"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_part(raw: str | None, expected: str) -> None:
    assert normalize_part(raw) == expected


def test_normalize_text() -> None:
    assert to_halfwidth("３－２－５０１") == "3-2-501"
    assert normalize_text("观象山庄三号楼二单元五零一") == "观象山庄3号楼2单元501"
    assert normalize_text("观象山庄 3 号楼") == "观象山庄3号楼"
    assert normalize_text("观象山庄 3 2 501") == "观象山庄3-2-501"
    assert normalize_text("观象山庄3—2—501，为啥") == "观象山庄3-2-501|为啥"
    assert normalize_text("金都大厦ａ座幺五零二") == "金都大厦A座1502"
    assert compact("滨河湾二期") == compact("滨河湾2期") == "滨河湾2期"
    assert compact("青松壹号") == compact("青松一号")


@pytest.mark.parametrize(
    ("typed", "parts"),
    [
        ("观象山庄3号楼2单元501", ("3", "2", "501")),
        ("3栋2单元501室", ("3", "2", "501")),
        ("3幢2单元501户", ("3", "2", "501")),
        ("3号2单元501号", ("3", "2", "501")),
        ("3#楼2门501", ("3", "2", "501")),
        ("3-2-501", ("3", "2", "501")),
        ("3-501", ("3", None, "501")),
        ("A座1502", ("A", None, "1502")),
        ("A-1502", ("A", None, "1502")),
        ("十二号楼302", ("12", None, "302")),
        ("3号楼2单元5楼501", ("3", "2", "501")),
        ("3号楼2单元5层501", ("3", "2", "501")),
        ("3号楼", ("3", None, None)),
        ("501", (None, None, "501")),
        ("滨河湾二期3号楼2单元501", ("3", "2", "501")),
        ("等了10年了，观象山庄3号楼2单元501", ("3", "2", "501")),
        ("滨河湾2期", (None, None, None)),
        ("电话13812345678", (None, None, None)),
        ("为啥办不了证", (None, None, None)),
    ],
)
def test_parse_unit(typed: str, parts: tuple[str | None, str | None, str | None]) -> None:
    uq = parse_unit(normalize_text(typed))
    assert (uq.building, uq.unit, uq.room) == parts
    assert uq.given == any(parts)


def test_unit_label_for_messages() -> None:
    assert parse_unit(normalize_text("3-2-501")).label() == "3号楼2单元501室"
    assert parse_unit(normalize_text("A座1502")).label() == "A座1502室"
