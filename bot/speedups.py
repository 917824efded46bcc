"""Rasa 3.6 hot-path fixes that change no behaviour, installed when Rasa loads our tracker store.

`RemoteAction._validate_action_result` calls `jsonschema.validate(result, schema)` for every
custom-action response, and `validate` first checks the schema itself against the JSON Schema
meta-schema. Profiling a conversation (py-spy, bench/bot_bench.py) put ~40 % of Rasa's time per
message there: a form turn runs two or three custom actions. The schema is a constant, so it is
checked once here and the response is validated by a prepared validator: same draft, same errors,
same message.

`Event.resolve_by_type` (every event read back from the tracker store or an action response)
walks all subclasses of `Event` and asks `inspect.isabstract` of each, for every event: about
5 % of Rasa's time per message on a conversation-sized tracker (py-spy, bench/bot_scale_bench.py).
Here a type name is resolved that way once and remembered: the same class, the same None for
the old "topic" events, the same default or ValueError for unknown names (those are never
remembered, so an event class imported later is still found).
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_installed = False


def _make_validate_action_result() -> Any:
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of once per action response
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        # What `jsonschema.validate` raises: the best match among the errors.
        error = best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            "For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    return _validate_action_result


def _make_resolve_by_type() -> Any:
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    known: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        """Returns an event class by its type name (Rasa's lookup, remembered per name)."""
        cls = known.get(type_name)
        if cls is not None:
            return cls
        cls = original(type_name, default)
        if cls is not None and cls is not default:
            known[type_name] = cls
        return cls

    resolve_by_type.__wrapped__ = original  # type: ignore[attr-defined]
    return resolve_by_type


def install_speedups() -> bool:
    """Patch Rasa once per process; returns True the first time."""
    global _installed
    with _lock:
        if _installed:
            return False
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.core.events import Event

        RemoteAction._validate_action_result = _make_validate_action_result()  # type: ignore[method-assign]
        Event.resolve_by_type = staticmethod(_make_resolve_by_type())  # type: ignore[method-assign,assignment]
        _installed = True
        return True


# -- the SQL tracker store ----------------------------------------------------------------------

# How many events of a tracker are rows of the store already (set when it is read or saved).
STORED_EVENTS = "_fangben_stored_events"


def stored_events(tracker: Any) -> int | None:
    """The number of `tracker`'s first events that are stored rows already, when known."""
    value = getattr(tracker, STORED_EVENTS, None)
    return value if isinstance(value, int) else None


def _lean_sql_store_class() -> Any:
    import itertools
    import json
    import os

    import sqlalchemy as sa
    from rasa.core.constants import POSTGRESQL_SCHEMA
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import SessionStarted
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    class LeanSQLTrackerStore(SQLTrackerStore):
        """Rasa's SQL tracker store: the same table, the same rows, the same trackers, with
        fewer round trips and less ORM work per turn (py-spy put ~25 % of Rasa's time per
        message in SQLAlchemy, bench/bot_scale_bench.py).

        - Reading the last session selects only the `data` column (no ORM objects) on an
          autocommit connection: no BEGIN, no ROLLBACK when the connection goes back to the pool.
        - Saving appends the tracker's events past the ones it was read with (or last saved)
          in one multi-row INSERT. Rasa counts the session's rows with a SELECT first: under
          the lock store nobody else writes a conversation between the read and the save of its
          turn, so the count is the number read. A tracker of unknown origin (created, not read),
          one with a `max_event_history`, an event broker or a PostgreSQL schema setting: Rasa's
          own way.
        """

        def _lean(self) -> bool:
            return self.event_broker is None and not os.environ.get(POSTGRESQL_SCHEMA)

        async def _retrieve(
            self, sender_id: str, fetch_events_from_all_sessions: bool
        ) -> DialogueStateTracker | None:
            if fetch_events_from_all_sessions or not self._lean():
                return await super()._retrieve(sender_id, fetch_events_from_all_sessions)
            table = self.SQLEvent.__table__
            session_start = (
                sa.select(sa.func.max(table.c.timestamp))
                .where(
                    table.c.sender_id == sender_id,
                    table.c.type_name == SessionStarted.type_name,
                )
                .scalar_subquery()
            )
            query = (
                sa.select(table.c.data)
                .where(
                    table.c.sender_id == sender_id,
                    sa.or_(table.c.timestamp >= session_start, session_start.is_(None)),
                )
                .order_by(table.c.id)
            )
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                rows = conn.execute(query).fetchall()
            if not (self.domain and rows):
                return None
            events = [json.loads(row[0]) for row in rows]
            tracker = DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
            setattr(tracker, STORED_EVENTS, len(rows))
            return tracker

        async def save(self, tracker: DialogueStateTracker) -> None:
            stored = stored_events(tracker)
            if stored is None or tracker._max_event_history or not self._lean():
                await super().save(tracker)
                setattr(tracker, STORED_EVENTS, None)
                return
            rows = []
            for event in itertools.islice(tracker.events, stored, None):
                data = event.as_dict()
                rows.append(
                    {
                        "sender_id": tracker.sender_id,
                        "type_name": event.type_name,
                        "timestamp": data.get("timestamp"),
                        "intent_name": data.get("parse_data", {})
                        .get("intent", {})
                        .get(INTENT_NAME_KEY),
                        "action_name": data.get("name"),
                        "data": json.dumps(data),
                    }
                )
            if rows:
                with self.engine.begin() as conn:
                    conn.execute(self.SQLEvent.__table__.insert(), rows)
            setattr(tracker, STORED_EVENTS, len(tracker.events))

    return LeanSQLTrackerStore


_lean_class: Any = None


def lean_sql_tracker_store() -> Any:
    """The LeanSQLTrackerStore class (made on first use: it needs Rasa imported)."""
    global _lean_class
    with _lock:
        if _lean_class is None:
            _lean_class = _lean_sql_store_class()
        return _lean_class
