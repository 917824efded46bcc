"""Rasa's Redis lock store, without its wedge when a replica dies holding a conversation.

Use it from `bot/endpoints.prod.yml` (Rasa runs with `bot/` as the working directory):

    lock_store:
      type: lockstore.RedisTicketLockStore
      url: ...            # the same keys as `type: redis`

Rasa 3.6's ticket lock waits while the ticket being served is not its own, and serves "ticket
0" when no ticket is left. A replica killed in the middle of a turn leaves its ticket behind;
it expires after TICKET_LOCK_LIFETIME seconds, but the next replica's ticket for the same
conversation, issued less than one polling interval later (the resident tapping again), expires
before the waiter looks again: the queue is then empty, "0" is never the waiter's number and the
message waits forever (until the caller gives up), whatever the lifetime. Here a waiter goes on
as soon as no live ticket is ahead of its own, its own expired or not. Mutual exclusion is what
Rasa gives: a holder keeps the conversation for at most the ticket lifetime.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger(__name__)


def nobody_ahead(lock: TicketLock, ticket: int) -> bool:
    """True when no live ticket of `lock` was issued before `ticket`."""
    lock.remove_expired_tickets()
    return all(other.number >= ticket for other in lock.tickets)


class RedisTicketLockStore(RedisLockStore):
    """`type: redis` with a waiter that cannot be left behind by an expired queue."""

    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        """From the endpoint's keys (Rasa passes `endpoint_config`) or plain keyword arguments."""
        if endpoint_config is not None:
            kwargs = {"host": endpoint_config.url or "localhost", **endpoint_config.kwargs}
        super().__init__(**kwargs)

    async def _acquire_lock(
        self, conversation_id: str, ticket: int, wait_time_in_seconds: float
    ) -> TicketLock:
        while True:
            lock = self.get_lock(conversation_id)
            if lock is None or nobody_ahead(lock, ticket):
                # No lock left at all: every ticket, ours included, expired and was cleaned up.
                return lock or self.create_lock(conversation_id)
            logger.debug("conversation locked by an earlier turn; retrying")
            await asyncio.sleep(wait_time_in_seconds)
            self.update_lock(conversation_id)
