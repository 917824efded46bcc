"""Resident ID numbers (GB 11643-1999): format, birth date and check digit."""

from __future__ import annotations

import unicodedata
from datetime import date

# The weight of each of the first 17 digits, and the check character by weighted sum mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def weighted_sum(digits: str, start: int = 0) -> int:
    """The check-digit sum of `digits` standing at positions start, start + 1… of an ID."""
    weights = ID_WEIGHTS[start : start + len(digits)]
    return sum(int(c) * w for c, w in zip(digits, weights, strict=True))


def check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    return ID_CHECK[weighted_sum(first17) % 11]


def validate_id_number(raw: str) -> str:
    """Normalise (full-width, spaces, lower-case x) and validate; raise ValueError in Chinese.

    Unknown region codes are accepted: codes change and old IDs stay valid.
    """
    value = unicodedata.normalize("NFKC", raw or "").replace(" ", "").strip().upper()
    if len(value) != 18:
        raise ValueError(f"身份证号应为18位，您输入的是{len(value)}位")
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise ValueError("身份证号前17位应为数字，最后一位为数字或X")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValueError("身份证号中的出生日期不正确") from None
    if born.year < 1900 or born > date.today():
        raise ValueError("身份证号中的出生日期不正确")
    if check_digit(value[:17]) != value[17]:
        raise ValueError("身份证号校验位不正确，请核对后重新输入")
    return value
