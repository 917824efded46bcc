"""Resident ID numbers (GB 11643): length, birth date, check digit; unknown regions accepted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.status.idcard import check_digit, validate_id_number

# The worked example of GB 11643-1999 (check character X).
STANDARD_EXAMPLE = "11010519491231002X"


def _with_check(first17: str) -> str:
    return first17 + check_digit(first17)


def test_check_digit_of_the_standard_example() -> None:
    assert check_digit(STANDARD_EXAMPLE[:17]) == "X"
    # weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, sum mod 11 → "10X98765432"
    assert check_digit("00000000000000000") == "1"
    assert check_digit("10000000000000000") == "5"  # 7 mod 11 = 7 → "10X98765432"[7]


def test_valid_number_is_returned_normalised() -> None:
    assert validate_id_number(STANDARD_EXAMPLE) == STANDARD_EXAMPLE
    assert validate_id_number(STANDARD_EXAMPLE.lower()) == STANDARD_EXAMPLE  # 'x' → 'X'
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in STANDARD_EXAMPLE)
    assert validate_id_number(full_width) == STANDARD_EXAMPLE
    assert validate_id_number(" 110105 19491231 002x ") == STANDARD_EXAMPLE


def test_unknown_region_code_is_accepted() -> None:
    # 99 is no province; region codes change and old IDs stay valid.
    number = _with_check("99010119800101123")
    assert validate_id_number(number) == number


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (STANDARD_EXAMPLE[:17], "18位"),
        (STANDARD_EXAMPLE + "1", "18位"),
        ("", "18位"),
        ("1101051949123100AX", "前17位"),
        ("11010519491231002Y", "前17位"),
        (_with_check("11010519990230123"), "出生日期"),  # 30 February
        (_with_check("11010518991231123"), "出生日期"),  # before 1900
        ("110105194912310021", "校验位"),
    ],
)
def test_invalid_numbers_get_a_chinese_reason(raw: str, words: str) -> None:
    with pytest.raises(ValueError) as err:
        validate_id_number(raw)
    assert words in str(err.value)
    assert raw[:6] not in str(err.value) or not raw  # the number is never echoed


def test_birth_date_in_the_future_is_refused() -> None:
    tomorrow = date.today() + timedelta(days=1)
    number = _with_check(f"110105{tomorrow:%Y%m%d}123")
    with pytest.raises(ValueError, match="出生日期"):
        validate_id_number(number)


def test_every_wrong_check_character_is_refused() -> None:
    first17 = STANDARD_EXAMPLE[:17]
    wrong = [c for c in "0123456789X" if c != check_digit(first17)]
    for c in wrong:
        with pytest.raises(ValueError, match="校验位"):
            validate_id_number(first17 + c)
