"""Keyed hashing of ID numbers, masking, and the service-token dependency."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Header, Request

from app.core.config import settings
from app.core.errors import AppError


def _keyed_sha256(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's two pre-keyed states (RFC 2104): SHA-256 of key ⊕ ipad, of key ⊕ opad."""
    if len(key) > 64:  # SHA-256's block size
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return (
        hashlib.sha256(bytes(b ^ 0x36 for b in key)),
        hashlib.sha256(bytes(b ^ 0x5C for b in key)),
    )


_ID_INNER, _ID_OUTER = _keyed_sha256(settings.id_hash_secret.encode())


def hash_id_number(id_number: str) -> str:
    """HMAC-SHA256 of a normalised ID number with the ID_HASH_SECRET key (hex)."""
    # The same value as hmac.new(key, msg, sha256), from copies of the two pre-keyed SHA-256
    # states: copying OpenSSL's HMAC object costs about twice as much (ledger imports hash
    # millions of ID numbers).
    inner = _ID_INNER.copy()
    inner.update(id_number.strip().upper().encode())
    outer = _ID_OUTER.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def hash_id_numbers(id_numbers: Iterable[str]) -> list[str]:
    """hash_id_number of each of these IDs, already normalised (18 characters, upper-case X)."""
    inner_copy, outer_copy = _ID_INNER.copy, _ID_OUTER.copy
    out: list[str] = []
    append = out.append
    for id_number in id_numbers:
        inner = inner_copy()
        inner.update(id_number.encode())
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.hexdigest())
    return out


def mask_id(id_number_or_last4: str | None) -> str:
    """`**************123X`: only the last four characters stay visible."""
    if not id_number_or_last4:
        return ""
    return "*" * 14 + id_number_or_last4[-4:]


def mask_phone(phone: str | None) -> str:
    """`138****5678`."""
    if not phone:
        return ""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 7 else "****"


# 18-character resident ID (last may be X) and 11-digit mainland mobile numbers, as typed:
# digits ASCII or full-width (`\d` is Unicode), groups split by a space, an ideographic space
# or a dash, a mobile number perhaps after +86.
_SEP = "[ \u3000-]?"
_ID_RE = re.compile(rf"(?<![\dA-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[\dXxＸｘ](?![\dA-Za-z])")
_PHONE_RE = re.compile(
    rf"(?P<cc>(?:\+|＋)?(?:86|８６){_SEP})?(?<!\d)(?P<num>[1１][3-9３-９](?:{_SEP}\d){{9}})(?!\d)"
)


def _mask_digits(text: str, head: int, tail: int) -> str:
    """Every digit (and a final X) but the first `head` and the last `tail` becomes `*`;
    separators stay, so the text keeps its length (entity offsets hold)."""
    places = [i for i, ch in enumerate(text) if ch.isdigit() or ch in "XxＸｘ"]
    hidden = set(places[head : len(places) - tail])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(text))


def mask_personal(text: str) -> str:
    """Mask ID numbers and mobile numbers in free text before it is stored: `**************123X`,
    `139****5678` (written with spaces or dashes, they keep them)."""
    text = _ID_RE.sub(lambda m: _mask_digits(m.group(0), 0, 4), text)
    return _PHONE_RE.sub(lambda m: (m.group("cc") or "") + _mask_digits(m.group("num"), 3, 4), text)


def mask_name(name: str | None) -> str:
    """`张*` / `欧阳**`: the family name only."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


def pseudonym(value: str) -> str:
    """Short keyed digest for logs and rate-limit keys (sender ids, IPs): never the value."""
    return hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()[:16]


class Caller:
    """Who is calling a public endpoint: the action server (with a sender id) or a browser."""

    def __init__(self, ip: str, sender_id: str | None, is_service: bool) -> None:
        self.ip = ip
        self.sender_id = sender_id
        self.is_service = is_service

    @property
    def rate_keys(self) -> list[tuple[str, str]]:
        """Rate-limit buckets: the action server's calls per resident (its sender id), never
        per its IP, which every resident shares (issue 13: seven busy residents locked out an
        eighth); a browser's per IP."""
        if self.is_service:
            return [("sender", pseudonym(self.sender_id))] if self.sender_id else []
        return [("ip", pseudonym(self.ip))]


async def get_caller(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_sender_id: Annotated[str | None, Header()] = None,
) -> Caller:
    """Identify the caller; a bad service token is a 401, never silently ignored.

    A coroutine because it does no I/O: it runs on the event loop, not in a worker thread."""
    ip = request.client.host if request.client else "unknown"
    if authorization and authorization.lower().startswith("service "):
        token = authorization.split(" ", 1)[1].strip()
        if not hmac.compare_digest(token.encode(), settings.service_token.encode()):
            raise AppError(401, "bad_service_token", "服务令牌无效。")
        return Caller(ip=ip, sender_id=(x_sender_id or "")[:128] or None, is_service=True)
    return Caller(ip=ip, sender_id=None, is_service=False)


CallerDep = Annotated[Caller, Depends(get_caller)]
