"""A tracker store that masks ID numbers, mobiles and names before anything is stored.

Use it from `bot/endpoints.yml` (Rasa runs with `bot/` as the working directory):

    tracker_store:
      type: privacy.tracker_store.RedactingTrackerStore
      backend: memory            # memory (embedded default) | sql | redis
      mask_name_slots: true      # false while actions still read a clear person_name later
      # sql:   dialect, url, port, db, username, password, login_db, query
      # redis: url, port, db, password, key_prefix, record_exp, use_ssl

Masking happens on save, and what is saved is what the next turn reads back: a slot that
must carry an ID or a phone across turns has to hold an `enc:` reference (made by the
actions in the same turn the value arrives), never the number itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import (
    InMemoryTrackerStore,
    RedisTrackerStore,
    SQLTrackerStore,
    TrackerStore,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from speedups import STORED_EVENTS, install_speedups, lean_sql_tracker_store, stored_events

from privacy.logs import install_log_redaction
from privacy.redact import DEFAULT_NAME_SLOTS, NAME_ENTITIES, redact_events

logger = logging.getLogger(__name__)

_BACKENDS = {"memory": InMemoryTrackerStore, "sql": SQLTrackerStore, "redis": RedisTrackerStore}
# The SQL backend is Rasa's store with fewer round trips per turn (speedups.LeanSQLTrackerStore):
# same table, same rows.
_LEAN = {"sql": lean_sql_tracker_store}


def _choose_backend(backend: str | None, kwargs: dict[str, Any]) -> str:
    """The explicit `backend`, else sql when a dialect is given, redis when a key prefix is."""
    if backend:
        name = str(backend).lower()
        if name not in _BACKENDS:
            raise ValueError(f"unknown tracker store backend {backend!r}")
        return name
    if "dialect" in kwargs:
        return "sql"
    if "key_prefix" in kwargs or "record_exp" in kwargs:
        return "redis"
    return "memory"


class RedactingTrackerStore(TrackerStore):
    """Wraps the in-memory, SQL or Redis store and masks personal data in every saved event."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        backend: str | None = None,
        name_slots: Iterable[str] | None = None,
        mask_name_slots: bool | str = True,
        inner: TrackerStore | None = None,
        **kwargs: Any,
    ) -> None:
        """Build the wrapped store from the endpoint's keys (or take `inner` as given)."""
        self.name_slots = frozenset(DEFAULT_NAME_SLOTS if name_slots is None else name_slots)
        self.name_entities = NAME_ENTITIES
        self.mask_name_slots = str(mask_name_slots).lower() not in ("false", "0", "no", "off")
        if inner is None:
            chosen = _choose_backend(backend, kwargs)
            cls = _LEAN[chosen]() if chosen in _LEAN else _BACKENDS[chosen]
            if chosen != "memory" and host is not None:
                kwargs["host"] = host
            inner = cls(domain=domain, event_broker=event_broker, **kwargs)
        self._inner = inner
        super().__init__(domain, event_broker=None)
        install_log_redaction()
        install_speedups()  # every Rasa configuration loads this store

    @property
    def inner(self) -> TrackerStore:
        """The wrapped store (holds only masked events)."""
        return self._inner

    @property
    def domain(self) -> Domain:
        """The domain, shared with the wrapped store."""
        return self._inner.domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._inner.domain = domain or Domain.empty()

    @property
    def max_event_history(self) -> int | None:  # type: ignore[override]
        """History limit, shared with the wrapped store."""
        return self._inner.max_event_history

    @max_event_history.setter
    def max_event_history(self, value: int | None) -> None:
        if hasattr(self, "_inner"):
            self._inner.max_event_history = value

    def redacted_copy(self, tracker: DialogueStateTracker, start: int = 0) -> DialogueStateTracker:
        """A new tracker replaying masked copies of the tracker's events.

        The first `start` events are left as they are (the whole conversation still decides
        what is a name): a SQL store appends only the events past those it holds, so masking
        the rows it has already is work nobody reads.
        """
        originals = list(tracker.events)
        events = [event.as_dict() for event in originals]
        masked = redact_events(
            events, self.name_slots, self.name_entities, self.mask_name_slots, start=start
        )
        # Unchanged events are reused as they are (rebuilding every event is slow in Rasa).
        replay = [
            original if after == before else type(original)._from_parameters(after)
            for original, before, after in zip(originals, events, masked, strict=True)
        ]
        return DialogueStateTracker.from_events(
            tracker.sender_id,
            [event for event in replay if event is not None],  # type: ignore[misc]
            self.domain.slots,
            max_event_history=tracker._max_event_history,
        )

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store a masked copy; the live tracker of this turn is left untouched."""
        stored = stored_events(tracker) if isinstance(self._inner, SQLTrackerStore) else None
        copy = self.redacted_copy(tracker, start=stored or 0)
        setattr(copy, STORED_EVENTS, stored)
        await self._inner.save(copy)
        setattr(tracker, STORED_EVENTS, stored_events(copy))

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The last session of a conversation, as stored (masked)."""
        return await self._inner.retrieve(sender_id)

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """All sessions of a conversation, as stored (masked)."""
        return await self._inner.retrieve_full_tracker(conversation_id)

    async def exists(self, conversation_id: str) -> bool:
        """Whether the wrapped store knows the conversation."""
        return await self._inner.exists(conversation_id)

    async def keys(self) -> Iterable[str]:
        """Conversation ids of the wrapped store."""
        return await self._inner.keys()
