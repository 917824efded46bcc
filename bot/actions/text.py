"""Parsing and masking helpers for what residents type (ID numbers, phones, names, numbers)."""

from __future__ import annotations

import re
import unicodedata

ID_RE = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{16}[\dXx])(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)(?:\+?86[\s-]?)?(1[3-9]\d[\s-]?\d{4}[\s-]?\d{4})(?!\d)")
PHONE_OK = re.compile(r"1[3-9]\d{9}")
PETITION_RE = re.compile(r"XF[\s\-—_]*(\d{8})[\s\-—_]*(\d{4})", re.IGNORECASE)
NAME_RE = re.compile(r"[\u4e00-\u9fff·]{2,8}")
_NAME_PREFIX = re.compile(
    r"^(我叫|我是|本人|名字是|名字叫|名字|姓名是|姓名|产权人是|产权人|业主是|业主|户主是|户主|叫)[:：]?"
)
_ADDRESS_HINT = re.compile(
    r"\d|[一二三四五六七八九十两零〇]+(号|栋|幢|单元|楼|室|层)|号楼|栋|幢|单元|室|小区|花园|苑|山庄|家园"
    r"|公寓|大厦|广场|新村|新城|名都|府|湾|城|里|院|路|街|巷|村"
)


def normalize(text: str | None) -> str:
    """NFKC (full-width digits and letters to ASCII) and trimmed."""
    return unicodedata.normalize("NFKC", text or "").strip()


def find_id_number(text: str | None) -> str | None:
    """The first 18-character resident ID number in the text (upper-case X), if any."""
    match = ID_RE.search(normalize(text).replace(" ", ""))
    return match.group(1).upper() if match else None


def valid_id_number(value: str) -> bool:
    """Shape and ISO 7064 check digit of an 18-character resident ID number."""
    value = normalize(value).upper()
    if not re.fullmatch(r"[1-9]\d{16}[\dX]", value):
        return False
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(value[:17], weights, strict=True))
    return "10X98765432"[total % 11] == value[17]


def find_phone(text: str | None) -> str | None:
    """The first mobile number in the text without spaces, dashes or +86, if any."""
    match = PHONE_RE.search(normalize(text))
    return re.sub(r"[\s-]", "", match.group(1)) if match else None


def clean_phone(value: str | None) -> str | None:
    """A valid 11-digit mobile number (1[3-9]…) from what was typed, else None."""
    value = re.sub(r"[\s\-()（）]", "", normalize(value))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    return value if PHONE_OK.fullmatch(value) else None


def find_petition_number(text: str | None) -> str | None:
    """A petition number XF-YYYYMMDD-NNNN in the text, normalised, if any."""
    match = PETITION_RE.search(normalize(text))
    return f"XF-{match.group(1)}-{match.group(2)}" if match else None


def name_from_text(text: str | None) -> str | None:
    """A Chinese personal name typed on its own ("张三", "我叫李桂兰。"), else None."""
    value = re.sub(r"[\s,，。.!！?？、]", "", normalize(text))
    value = _NAME_PREFIX.sub("", value)
    return value if NAME_RE.fullmatch(value) and len(value) <= 5 else None


def looks_like_address(text: str | None) -> bool:
    """True when the text has the marks of an address (numbers, 号楼, 单元, 小区 …)."""
    value = normalize(text)
    return 2 <= len(value) <= 120 and bool(_ADDRESS_HINT.search(value))


def mask_numbers(text: str) -> str:
    """Mask ID numbers and phones inside free text (e.g. a petition description)."""
    text = ID_RE.sub(lambda m: "*" * 14 + m.group(1)[-4:], normalize(text))
    return PHONE_RE.sub(lambda m: m.group(1)[:3] + "****" + m.group(1)[-4:], text)
