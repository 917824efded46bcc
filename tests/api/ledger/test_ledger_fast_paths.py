"""The import's fast paths (issue 15) give the same answers as the general code they bypass:
ID numbers decided by lookups, ID hashes from pre-keyed SHA-256 states, rows formatted for COPY
directly, a home repeated inside one batch staged keys-only. The report of a file with many
kinds of bad unit rows is spelled out here in full, row by row and reason by reason."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from ledger_files import ID_A, ID_B, ID_C, projects_default, unit, write_pair
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.security import _keyed_sha256, hash_id_number
from app.ledger import service
from app.ledger.rows import IdChecker
from app.ledger.service import (
    _COPY_ESCAPES,
    LedgerValidationError,
    _copy_line,
    import_ledger,
)
from app.status.idcard import check_digit, validate_id_number
from app.status.models import Unit


def _with_check(first17: str) -> str:
    return first17 + check_digit(first17)


# A made-up ID whose check character is X.
X_ID = next(v for v in (_with_check(f"990101198001010{n:02d}") for n in range(100)) if "X" in v)


def _id_samples() -> list[str]:
    """Valid IDs and every kind of near miss (a wrong digit, date, length, width, case)."""
    rng = random.Random(15)
    valid = []
    for _ in range(300):
        born = date(1900, 1, 1) + timedelta(days=rng.randrange(0, 45_000))
        valid.append(
            _with_check(f"{rng.randrange(100000, 999999)}{born:%Y%m%d}{rng.randrange(1000):03d}")
        )
    x_ending = X_ID
    tomorrow = date.today() + timedelta(days=1)
    samples = [*valid, ID_A, ID_B, ID_C, x_ending, x_ending.lower(), " " + ID_A, ID_A + " "]
    for v in valid[:40]:
        samples.append(v[:17] + ("0" if v[17] != "0" else "1"))  # wrong check digit
        samples.append(v[:-1])  # 17 characters
        samples.append(v + "1")  # 19 characters
        samples.append(
            v.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        )  # full width
        samples.append(v[:6] + " " + v[6:])  # a space inside
        samples.append(v[:5] + "a" + v[6:])
    samples += [
        _with_check("99010118991231001"),  # born before 1900
        _with_check(f"990101{tomorrow:%Y%m%d}001"),  # born tomorrow
        _with_check("99010119900230001"),  # 30 February
        _with_check("99010119901301001"),  # month 13
        _with_check("99010119900100001"),  # day 0
        "99010119900101001X"[:17] + "Y",
        "१२३४५६१९९००१०१००१२",  # other scripts' digits
        "",
        "9.90101E+17",
        ID_A[:15] + "000",
    ]
    return samples


def test_the_id_checker_agrees_with_validate_id_number() -> None:
    checker = IdChecker()
    for raw in _id_samples():
        try:
            normalised: str | None = validate_id_number(raw)
        except ValueError:
            normalised = None
        fast = checker.valid(raw)
        # The fast path accepts only what validate_id_number accepts unchanged, and every
        # plain ASCII ID that validate_id_number accepts unchanged.
        assert fast == (normalised == raw and raw.isascii()), raw


def test_id_hash_is_hmac_sha256_with_the_secret() -> None:
    for value in (ID_A, ID_B, "11010119900307123X", ""):
        expected = hmac.new(
            settings.id_hash_secret.encode(), value.encode(), hashlib.sha256
        ).hexdigest()
        assert hash_id_number(value) == expected
    for key in (b"", b"k", b"k" * 64, b"k" * 65, "秘密".encode() * 30):
        inner, outer = _keyed_sha256(key)
        inner.update(b"990101198001010014")
        outer.update(inner.digest())
        assert outer.hexdigest() == hmac.new(key, b"990101198001010014", hashlib.sha256).hexdigest()


def test_copy_lines_are_the_general_copy_text_format() -> None:
    def general(row: tuple[object, ...]) -> str:
        return "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES) for v in row)

    rows = [
        (1, 0, 2, "T001", "3", "2", "501", "测甲", "ab" * 32, "0014", "not_started"),
        (2, 1, 3, "T001", "3", "", "502", "", None, None, "done"),
        (3, 0, 4, "T001", "3", "", "503", "", None, None, ""),
        (4, 0, 5, "T\\1", "a\tb", "c\nd", "e\rf", "测\\N\t甲\r\n乙\\", None, None, "done"),
        (5, 0, 6, "T001", "1", "1", "1", "\\", "ff" * 32, "123X", "in_progress"),
    ]
    for row in rows:
        assert _copy_line(row) == general(row) + "\n"


def _bad_units() -> list[dict[str, str]]:
    return [
        unit(),  # row 2: valid
        unit(**{"房号": "601", "身份证号": ID_A[:17] + "0"}),  # 3: wrong check digit
        unit(**{"房号": "602", "身份证号": "99010118991231001" + "0"}),  # 4: born 1899
        unit(**{"房号": "603", "身份证号": "9.90101E+17"}),  # 5: scientific notation
        unit(**{"房号": "604", "身份证号": ID_A.translate(str.maketrans("019", "０１９"))}),
        unit(**{"项目编号": "NOPE", "房号": "605"}),  # 7: unknown project
        unit(**{"项目编号": "", "房号": "606"}),  # 8: no project
        unit(**{"幢号": "", "房号": "607", "转移登记": "完成"}),  # 9: two reasons
        unit(**{"房号": "6" * 33}),  # 10: too long
        unit(**{"房号": "609", "业主姓名": "名" * 65}),  # 11: owner too long
        unit(**{"房号": "610", "转移登记": ""}),  # 12: empty status
        unit(**{"房号": "0501", "身份证号": ID_B}),  # 13: the home of row 2
        unit(**{"房号": "611", "身份证号": "99010119900230" + "0011"}),  # 14: 30 February
        unit(**{"房号": "612", "身份证号": X_ID.lower()}),  # 15: valid (a lower-case x)
        unit(**{"房号": "613", "身份证号": ID_C[:10]}),  # 16: ten characters
        unit(**{"房号": "五〇一", "身份证号": ""}),  # 17: the home of row 2 again
    ]


EXPECTED = [
    (3, "身份证号", "身份证号校验位不正确，请核对后重新输入", "3号楼/2单元/601"),
    (4, "身份证号", "身份证号中的出生日期不正确", "3号楼/2单元/602"),
    (
        5,
        "身份证号",
        "身份证号被存成了科学计数法数字，后几位已丢失；该列在表格软件里可能是“数字”格式，"
        "请把身份证号列设为“文本”后重新填写导出",
        "3号楼/2单元/603",
    ),
    (7, "项目编号", "项目编号“NOPE”不在项目表中，数据库里也没有这个项目", "3号楼/2单元/605"),
    (8, "项目编号", "项目编号不能为空", "3号楼/2单元/606"),
    (9, "幢号", "幢号不能为空", "—/2单元/607"),
    (9, "转移登记", "转移登记只能填“已办结”“办理中”或“未办理”，不能是“完成”", "—/2单元/607"),
    (10, "房号", "房号太长（最多32个字符）", "3号楼/2单元/" + "6" * 33),
    (11, "业主姓名", "业主姓名太长（最多64个字符）", "3号楼/2单元/609"),
    (12, "转移登记", "转移登记只能填“已办结”“办理中”或“未办理”，不能是空", "3号楼/2单元/610"),
    (13, "房号", "房屋重复：与第2行是同一套房（幢号、单元、房号相同）", "3/2/501"),
    (14, "身份证号", "身份证号中的出生日期不正确", "3号楼/2单元/611"),
    (16, "身份证号", "身份证号应为18位，您输入的是10位", "3号楼/2单元/613"),
    (17, "房号", "房屋重复：与第2行是同一套房（幢号、单元、房号相同）", "3/2/501"),
]


@pytest.mark.parametrize("batch_rows", [1, 3, 10_000])
def test_a_file_with_many_kinds_of_bad_unit_rows_gives_the_whole_report(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    # Batches of 1 and 3 put the repeated homes in other batches; 10,000 puts them in the
    # same batch as their first copy (staged keys-only there): the report is the same.
    monkeypatch.setattr(service, "BATCH_ROWS", batch_rows)
    units = _bad_units()
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger(write_pair(tmp_path, units=units), db=db, actor="tester")
    got = [(e.row, e.column, e.reason, e.home) for e in caught.value.errors]
    assert got == EXPECTED
    assert {e.sheet for e in caught.value.errors} == {"units.csv"}
    assert caught.value.total == len(EXPECTED)
    assert db.scalar(select(func.count()).select_from(Unit)) == 0


@pytest.mark.parametrize("batch_rows", [2, 10_000])
def test_full_width_and_lower_case_ids_are_stored_like_their_plain_form(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(service, "BATCH_ROWS", batch_rows)
    x_id = X_ID
    wide = ID_B.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    units = [
        unit(**{"身份证号": x_id.lower()}),
        unit(**{"房号": "502", "身份证号": wide}),
        unit(**{"房号": "503", "身份证号": " " + ID_C + " "}),
    ]
    import_ledger(write_pair(tmp_path, projects_default(), units), db=db, actor="tester")
    db.expire_all()
    stored = {u.room: (u.id_hash, u.id_last4) for u in db.scalars(select(Unit))}
    assert stored == {
        "501": (hash_id_number(x_id), x_id[-4:]),
        "502": (hash_id_number(ID_B), ID_B[-4:]),
        "503": (hash_id_number(ID_C), ID_C[-4:]),
    }
