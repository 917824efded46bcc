"""Address normalisation (numerals, building/unit/room words). Matching lives in matching.py."""

from __future__ import annotations

import re
import unicodedata

import cn2an

_CN_DIGIT_VALUES = dict(
    zip("零〇一二两三四五六七八九", "00122345678 9".replace(" ", ""), strict=True)
)
_CN_DIGITS = "".join(_CN_DIGIT_VALUES)
_PART_SUFFIX = re.compile(r"(号楼|号院|栋|幢|座|楼|单元|门|室|号|户)$")


def to_halfwidth(text: str) -> str:
    """Full-width digits and letters to ASCII (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def cn_digits_to_arabic(text: str) -> str:
    """'五零一' → '501', '十二' → '12', '二十三' → '23' (digit-by-digit when there is no 十/百)."""
    if not text or any(ch not in _CN_DIGITS + "十百" for ch in text):
        return text
    if any(ch in "十百" for ch in text):
        try:
            return str(int(cn2an.cn2an(text, "smart")))
        except (ValueError, KeyError):
            return text
    return "".join(_CN_DIGIT_VALUES[ch] for ch in text)


def normalize_part(raw: str | int | None) -> str:
    """One building/unit/room value as the ledger and residents write it → canonical form.

    '3号楼' → '3', '二单元' → '2', '501室' → '501', 'Ａ座' → 'A', '03' → '3'.
    """
    if raw is None:
        return ""
    text = to_halfwidth(str(raw)).strip().upper().replace(" ", "")
    text = _PART_SUFFIX.sub("", text)
    text = cn_digits_to_arabic(text)
    if text.isdigit():
        text = str(int(text))
    return text
