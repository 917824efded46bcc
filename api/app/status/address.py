"""Address normalisation (numerals, building/unit/room words). Matching lives in matching.py."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import cn2an
import opencc

_CN_DIGIT_VALUES = dict(
    zip("零〇一二两三四五六七八九", "00122345678 9".replace(" ", ""), strict=True)
)
_CN_DIGITS = "".join(_CN_DIGIT_VALUES)
_PART_SUFFIX = re.compile(r"(号楼|号院|栋|幢|座|楼|单元|门|室|号|户)$")

# Financial numerals (壹贰叁) and 幺 (how "1" is read out in room numbers) as plain numerals.
_NUMERAL_ALIASES = str.maketrans("壹贰叁肆伍陆柒捌玖拾幺", "一二三四五六七八九十一")
_CN_NUMERAL_RUN = re.compile(r"[零〇一二两三四五六七八九十百千]+")
_DASHES = str.maketrans({"—": "-", "–": "-", "―": "-", "─": "-", "~": "-", "_": "-"})
# Anything that ends a phrase: the unit tokens of one address never run across these.
_SEPARATORS = re.compile(r"[,.;:!?，。；：！？、…()（）\[\]【】“”\"'‘’《》<>/\\|]+")


# OpenCC's Traditional → Simplified table (character and phrase level): '觀象山莊3號樓' and
# '观象山庄3号楼' meet, on the resident's side and on the ledger's.
_T2S = opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional Chinese characters to simplified ones (other characters unchanged)."""
    return _T2S.convert(text) if text else text


def to_halfwidth(text: str) -> str:
    """Full-width digits and letters to ASCII (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def cn_digits_to_arabic(text: str) -> str:
    """'五零一' → '501', '十二' → '12', '二十三' → '23' (digit-by-digit when there is no 十/百)."""
    if not text or any(ch not in _CN_DIGITS + "十百千" for ch in text):
        return text
    if any(ch in "十百千" for ch in text):
        try:
            return str(int(cn2an.cn2an(text, "smart")))
        except Exception:  # cn2an rejects odd runs ('十十') in several ways: keep the text
            return text
    return "".join(_CN_DIGIT_VALUES[ch] for ch in text)


def normalize_part(raw: str | int | None) -> str:
    """One building/unit/room value as the ledger and residents write it → canonical form.

    '3号楼' → '3', '二单元' → '2', '501室' → '501', 'Ａ座' → 'A', '03' → '3'.
    """
    if raw is None:
        return ""
    text = to_halfwidth(to_simplified(str(raw))).strip().upper().replace(" ", "")
    text = _PART_SUFFIX.sub("", text)
    text = cn_digits_to_arabic(text.translate(_NUMERAL_ALIASES))
    if text.isdigit():
        text = str(int(text))
    return text


def normalize_text(text: str) -> str:
    """What a resident typed → one canonical string for matching.

    Traditional characters to simplified ('觀象山莊' → '观象山庄'), full-width to ASCII, upper
    case, spaces dropped (between digits: '-'), dashes unified, punctuation turned into '|' (a
    phrase break), and every run of Chinese numerals turned into Arabic digits
    ('三号楼二单元五零一' → '3号楼2单元501', '二期' → '2期').
    Project names and aliases go through the same function, so '滨河湾二期' and '滨河湾2期'
    meet.
    """
    value = to_halfwidth(to_simplified(text or "")).upper()
    value = value.translate(_DASHES).translate(_NUMERAL_ALIASES)
    # '3 2 501' reads as 3-2-501; other spaces ('观象山庄 3 号楼') carry nothing.
    value = re.sub(r"\s+", "", re.sub(r"(?<=\d)\s+(?=\d)", "-", value))
    value = _SEPARATORS.sub("|", value)
    value = _CN_NUMERAL_RUN.sub(lambda m: cn_digits_to_arabic(m.group()), value)
    return value.strip("|")


def compact(text: str) -> str:
    """normalize_text without phrase breaks and dashes: the form project names are compared in."""
    return normalize_text(text).replace("|", "").replace("-", "")


@dataclass(frozen=True)
class UnitQuery:
    """Building/unit/room parsed from an address (normalised; None when not given).

    `start`/`end` locate the parsed span in the normalised text.
    """

    building: str | None = None
    unit: str | None = None
    room: str | None = None
    start: int = 0
    end: int = 0

    @property
    def given(self) -> bool:
        """True when any of building, unit or room was typed."""
        return any((self.building, self.unit, self.room))

    def label(self) -> str:
        """'3号楼2单元501室' for messages."""
        parts = []
        if self.building:
            parts.append(f"{self.building}{'座' if self.building.isalpha() else '号楼'}")
        if self.unit:
            parts.append(f"{self.unit}单元")
        if self.room:
            parts.append(f"{self.room}室")
        return "".join(parts)


_BUILDING_MARKS = {"号楼", "号院", "栋", "幢", "座", "#", "#楼", "楼"}
_UNIT_MARKS = {"单元", "门"}
_ROOM_MARKS = {"室", "户"}
_TOKEN = re.compile(
    r"(?P<num>(?<!\d)\d{1,5}(?![\d期年月日天岁个次万元块平米倍%])|(?<![A-Z])[A-Z](?=座|栋|幢|号楼|-|\d))"
    r"(?P<mark>号楼|号院|#楼|#|栋|幢|座|单元|门|室|户|号|楼|层)?"
)


@dataclass
class _Token:
    num: str
    mark: str
    start: int
    end: int


def _clusters(text: str) -> list[list[_Token]]:
    """Runs of number tokens that touch each other (or are joined by '-')."""
    clusters: list[list[_Token]] = []
    current: list[_Token] = []
    for m in _TOKEN.finditer(text):
        tok = _Token(m.group("num"), m.group("mark") or "", m.start(), m.end())
        if current:
            gap = text[current[-1].end : tok.start]
            if gap not in ("", "-"):
                clusters.append(current)
                current = []
        current.append(tok)
    if current:
        clusters.append(current)
    return clusters


def _roles(tokens: list[_Token]) -> tuple[str | None, str | None, str | None]:
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    unmarked: list[str] = []
    for i, tok in enumerate(tokens):
        num, mark = normalize_part(tok.num), tok.mark
        has_next = i + 1 < len(tokens)
        if mark == "层":
            continue  # a floor: the room number already carries it
        if mark in _BUILDING_MARKS:
            if building is None:
                building = num
            # '3号楼2单元5楼501': a second 楼 is the floor
        elif mark in _UNIT_MARKS:
            unit = num
        elif mark in _ROOM_MARKS:
            room = num
        elif mark == "号":
            # '3号2单元501' → building; '501号' → room
            if has_next and building is None:
                building = num
            else:
                room = num
        else:
            unmarked.append(num)
    empty = [slot for slot, value in (("b", building), ("u", unit), ("r", room)) if value is None]
    if unmarked:
        if len(unmarked) == 2 and empty == ["b", "u", "r"]:
            targets = ["b", "r"]  # the a-c form: building-room
        elif len(unmarked) >= len(empty):
            targets = empty
        elif "r" in empty:
            # fill the room first, then the slots before it
            targets = (empty[: len(unmarked) - 1] + ["r"]) if len(unmarked) > 1 else ["r"]
        else:
            targets = empty[-len(unmarked) :]
        for slot, value in zip(targets, unmarked, strict=False):
            if slot == "b":
                building = value
            elif slot == "u":
                unit = value
            else:
                room = value
    return building, unit, room


def parse_unit(normalized: str) -> UnitQuery:
    """Find the building/unit/room part in a normalised address (see normalize_text).

    Handles 号楼/栋/幢/座/楼, 单元/门, 室/号/户, and the dash forms a-b-c and a-c. When the text
    holds several runs of numbers ('…501，等了10年'), the richest run wins.
    """
    best: tuple[int, int, UnitQuery] | None = None
    for tokens in _clusters(normalized):
        building, unit, room = _roles(tokens)
        if not any((building, unit, room)):
            continue
        if len(tokens) == 1 and not tokens[0].mark and tokens[0].num.isdigit():
            # A lone bare number ('10年', '2期') is a room only when nothing better exists.
            weight = 0
        else:
            weight = len(tokens) + sum(1 for t in tokens if t.mark)
        query = UnitQuery(building, unit, room, tokens[0].start, tokens[-1].end)
        if best is None or weight > best[0]:
            best = (weight, -query.start, query)
    return best[2] if best else UnitQuery()
