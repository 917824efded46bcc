"""Opaque references for ID and phone numbers kept in slots across turns.

The tracker store keeps every slot event; an ID number or a phone must never sit there in the
clear. Validators seal the value (Fernet, key from BOT_SLOT_KEY) and actions unseal it only to
call the api.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from actions.config import DEV_SLOT_KEY_SEED, settings

PREFIX = "enc:"


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    key = settings.slot_key
    if not key:
        # Development default: a key derived from a fixed dev string (never for production).
        key = base64.urlsafe_b64encode(hashlib.sha256(DEV_SLOT_KEY_SEED.encode()).digest()).decode()
    return Fernet(key.encode() if isinstance(key, str) else key)


def is_sealed(value: object) -> bool:
    """True when the value is an `enc:` reference made by `seal`."""
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(value: str) -> str:
    """Encrypt a value into an `enc:<token>` reference (already sealed values are kept)."""
    if is_sealed(value):
        return value
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def unseal(token: str | None) -> str | None:
    """Decrypt an `enc:` reference; None for an empty, foreign or tampered value."""
    if not is_sealed(token):
        return None
    assert isinstance(token, str)
    try:
        return _fernet().decrypt(token[len(PREFIX) :].encode()).decode()
    except (InvalidToken, ValueError):
        return None
