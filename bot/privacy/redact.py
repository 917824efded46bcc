"""Masking of ID numbers, mobile numbers and names in texts and serialised tracker events.

Masks keep the length and the position of every character (digits become `*`, separators
stay), so entity offsets in `parse_data` stay valid after masking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

ENC_PREFIX = "enc:"
"""Opaque Fernet references made by the actions (`actions/sensitive.py`); never masked."""

NAME_ENTITIES = frozenset({"person_name"})
DEFAULT_NAME_SLOTS = frozenset({"person_name"})
MAX_NAME_ANSWER = 20
# A bare Chinese name as typed in answer to the name question (2–4 characters, or a longer
# minority name with a middle dot).
_NAME_LIKE = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,10}[·•][\u4e00-\u9fff]{1,10}")
_SKIP_KEYS = frozenset({"message_id", "timestamp", "event"})

_D = "[0-9０-９]"
_CN = "[〇零一二三四五六七八九幺]"
_SEP = "[ \u3000\\-－]?"

# 18-character resident ID: 6 + 8 + 3 digits and a check character, optionally grouped.
_ID_RE = re.compile(rf"(?<!{_D}){_D}{{6}}{_SEP}{_D}{{8}}{_SEP}{_D}{{3}}[0-9０-９XxＸｘ](?!{_D})")
_ID_CN_RE = re.compile(rf"(?<!{_CN}){_CN}{{17}}[〇零一二三四五六七八九幺XxＸｘ](?!{_CN})")
# Any other long digit run (old 15-digit IDs, bank cards): only the last four stay visible.
_LONG_RE = re.compile(rf"(?<!{_D}){_D}{{15,}}(?!{_D})")
# Mainland mobile, optionally with +86 and grouped 3-4-4.
_PHONE_RE = re.compile(
    rf"(?<!{_D})(?:[+＋]?(?:86|８６){_SEP})?[1１][3-9３-９]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}(?!{_D})"
)
_PHONE_CN_RE = re.compile(rf"(?<!{_CN})[一幺][三四五六七八九]{_CN}{{9}}(?!{_CN})")
_DIGITISH = re.compile(r"[0-9０-９XxＸｘ〇零一二三四五六七八九幺]")


def _mask_positions(span: str, keep: set[int]) -> str:
    """Replace the digit-like characters of `span` by `*`, except those whose rank is kept."""
    out = []
    rank = 0
    for ch in span:
        if _DIGITISH.fullmatch(ch):
            out.append(ch if rank in keep else "*")
            rank += 1
        else:
            out.append(ch)
    return "".join(out)


def _mask_last_four(match: re.Match[str]) -> str:
    span = match.group(0)
    count = len(_DIGITISH.findall(span))
    return _mask_positions(span, set(range(count - 4, count)))


def _mask_phone(match: re.Match[str]) -> str:
    span = match.group(0)
    count = len(_DIGITISH.findall(span))
    # The last 11 digit-like characters are the mobile number proper (a +86 prefix stays).
    first = count - 11
    keep = set(range(first)) | {first, first + 1, first + 2} | set(range(count - 4, count))
    return _mask_positions(span, keep)


def mask_name(name: str) -> str:
    """`张*` / `欧阳**`: only the first character stays."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def mask_text(text: str) -> str:
    """Mask every ID number, long digit run and mobile number in a text."""
    if not text or text.startswith(ENC_PREFIX):
        return text
    text = _ID_RE.sub(_mask_last_four, text)
    text = _ID_CN_RE.sub(_mask_last_four, text)
    text = _LONG_RE.sub(_mask_last_four, text)
    text = _PHONE_RE.sub(_mask_phone, text)
    return _PHONE_CN_RE.sub(_mask_phone, text)


def contains_sensitive(text: str) -> bool:
    """True when the text holds an ID number, long digit run or mobile number in the clear."""
    return isinstance(text, str) and mask_text(text) != text


def _mask_string(value: str, names: list[str]) -> str:
    if value.startswith(ENC_PREFIX):
        return value
    value = mask_text(value)
    for name in names:
        if name in value:
            value = value.replace(name, mask_name(name))
    return value


def redact_value(value: Any, names: Iterable[str] = ()) -> Any:
    """Recursively mask strings in a JSON-like value; `enc:` references are kept."""
    ordered = sorted({n for n in names if len(n) >= 2}, key=len, reverse=True)
    return _redact(value, ordered)


def _redact(value: Any, names: list[str]) -> Any:
    if isinstance(value, str):
        return _mask_string(value, names)
    if isinstance(value, list):
        return [_redact(v, names) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact(v, names) for v in value)
    if isinstance(value, dict):
        return {k: (v if k in _SKIP_KEYS else _redact(v, names)) for k, v in value.items()}
    return value


def names_in_events(
    events: Iterable[dict[str, Any]],
    name_slots: Iterable[str] = DEFAULT_NAME_SLOTS,
    name_entities: Iterable[str] = NAME_ENTITIES,
) -> set[str]:
    """Clear-text person names found in name slots and name entities of serialised events."""
    slots = set(name_slots)
    entities = set(name_entities)
    found: set[str] = set()
    requested: Any = None
    for event in events:
        kind = event.get("event")
        if kind == "slot" and event.get("name") == "requested_slot":
            requested = event.get("value")
        if kind == "slot" and event.get("name") in slots:
            value = event.get("value")
            if isinstance(value, str) and not value.startswith(ENC_PREFIX):
                found.add(value.strip())
        elif kind == "user":
            text = event.get("text") or ""
            answer = text.strip()
            if requested in slots and _NAME_LIKE.fullmatch(answer):
                # The answer to "what is your name?": the form seals the slot at once, so
                # the typed text is the only clear copy.
                found.add(answer)
            parse = event.get("parse_data") or {}
            for entity in parse.get("entities") or []:
                if entity.get("entity") not in entities:
                    continue
                value = entity.get("value")
                if isinstance(value, str) and not value.startswith(ENC_PREFIX):
                    found.add(value.strip())
                start, end = entity.get("start"), entity.get("end")
                if isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
                    found.add(text[start:end].strip())
    return {n for n in found if len(n) >= 2 and not n.startswith("*")}


def redact_events(
    events: list[dict[str, Any]],
    name_slots: Iterable[str] = DEFAULT_NAME_SLOTS,
    name_entities: Iterable[str] = NAME_ENTITIES,
    mask_name_slots: bool = True,
    start: int = 0,
) -> list[dict[str, Any]]:
    """Masked copies of serialised tracker events (user/bot texts, parse data, slots, metadata).

    The first `start` events are returned as they are (already stored, masked): they still
    count for the names and the question being answered.

    Names found in name slots or name entities are masked wherever they appear. The name
    slots themselves keep their value when `mask_name_slots` is false: for actions that still
    need the clear name in a later turn (prefer sealing it as an `enc:` reference instead).
    """
    slots = frozenset(name_slots)
    names = names_in_events(events, slots, name_entities)
    masked = []
    requested: Any = None
    for index, event in enumerate(events):
        kind = event.get("event")
        if kind == "slot" and event.get("name") == "requested_slot":
            requested = event.get("value")
        if index < start:
            masked.append(event)
            continue
        if not mask_name_slots and kind == "slot" and event.get("name") in slots:
            masked.append(dict(event))
            continue
        answer = str(event.get("text") or "").strip()
        if kind == "user" and requested in slots and 0 < len(answer) <= MAX_NAME_ANSWER:
            # "我叫刘桂芳" answering the name question: the whole answer is the name.
            masked.append(redact_value(event, [*names, answer]))
        else:
            masked.append(redact_value(event, names))
    return masked
