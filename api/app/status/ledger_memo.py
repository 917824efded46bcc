"""Figures computed from the ledger alone, kept per process until the ledger token changes.

The dashboard's registration rows (10,000 projects at province scale) and the open blockers per
project change only when the ledger does, and every ledger change, in any process, writes a new
token (app.status.ledger_version). So `memo(db, name, build)` runs `build` once per token and
database and hands the same value back until the token moves.

The token is read before `build` runs, in the same transaction: what `build` reads is the state
of that token or newer, never older, so a value can be stale only under a token that is already
gone (and is then built again). A connection with ledger writes it has not committed yet gets a
fresh, uncached value. Values are shared between requests: callers must not change them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.status import ledger_version

T = TypeVar("T")

_memos: weakref.WeakKeyDictionary[Engine, dict[str, tuple[str, Any]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def memo(db: Session, name: str, build: Callable[[], T]) -> T:
    """`build()`'s value for db's database at the current ledger token (built at most once per
    token and process, unless the connection holds uncommitted ledger writes)."""
    conn = db.connection()
    if ledger_version.dirty(conn):
        return build()
    token = ledger_version.read(conn)
    if token is None:  # a database made without the migrations' first row: nothing to key by
        return build()
    with _lock:
        held = _memos.setdefault(conn.engine, {}).get(name)
    if held is not None and held[0] == token:
        return held[1]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        _memos.setdefault(conn.engine, {})[name] = (token, value)
    return value


def clear() -> None:
    """Forget every value (tests)."""
    with _lock:
        _memos.clear()
