"""bot/lockstore.py on the real Redis: a dead replica's ticket never wedges the next turn.

Rasa's own RedisLockStore is the control: the same situation leaves it waiting for good.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from lockstore import RedisTicketLockStore
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

REDIS_DB = int(os.environ.get("LOCKSTORE_TEST_REDIS_DB", "12"))
LIFETIME = 2.0


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own (alphanumeric, as Rasa requires); keys deleted after."""
    tag = f"locktest{uuid.uuid4().hex[:8]}"
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI: {exc}")
        pytest.skip(f"Redis unreachable: {exc}")
    yield tag
    for key in client.scan_iter(f"{tag}:*"):
        client.delete(key)


def _store(cls: type[RedisLockStore], prefix: str) -> RedisLockStore:
    return cls(host="127.0.0.1", port=6379, db=REDIS_DB, key_prefix=prefix)


async def _turn_after_a_dead_replica(store: RedisLockStore) -> float:
    """A replica took a ticket and died; the next turn comes at once. Seconds until it runs."""
    store.issue_ticket("c1", LIFETIME)  # the dead replica's, never cleaned up
    started = time.monotonic()
    async with store.lock("c1", lock_lifetime=LIFETIME, wait_time_in_seconds=0.5):
        return time.monotonic() - started


def test_the_next_turn_runs_once_the_dead_ticket_expires(prefix: str) -> None:
    store = _store(RedisTicketLockStore, prefix)
    waited = asyncio.run(_turn_after_a_dead_replica(store))
    assert LIFETIME - 0.5 <= waited <= LIFETIME + 2, waited
    assert store.get_lock("c1") is None  # cleaned up after the turn


def test_rasa_own_store_waits_for_good_in_the_same_case(prefix: str) -> None:
    store = _store(RedisLockStore, prefix)

    async def bounded() -> float:
        return await asyncio.wait_for(_turn_after_a_dead_replica(store), LIFETIME * 3)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(bounded())


def test_a_live_holder_still_excludes_the_next_turn(prefix: str) -> None:
    store = _store(RedisTicketLockStore, prefix)
    order: list[str] = []

    async def holder() -> None:
        async with store.lock("c2", lock_lifetime=30, wait_time_in_seconds=0.1):
            order.append("holder in")
            await asyncio.sleep(1.0)
            order.append("holder out")

    async def waiter() -> None:
        await asyncio.sleep(0.2)
        async with store.lock("c2", lock_lifetime=30, wait_time_in_seconds=0.1):
            order.append("waiter in")

    async def both() -> None:
        await asyncio.gather(holder(), waiter())

    asyncio.run(both())
    assert order == ["holder in", "holder out", "waiter in"]


def test_built_from_the_endpoint_config_as_rasa_does(prefix: str) -> None:
    config = EndpointConfig(
        url="127.0.0.1", type="lockstore.RedisTicketLockStore", port=6379, db=REDIS_DB
    )
    config.kwargs["key_prefix"] = prefix
    from rasa.core.lock_store import LockStore

    store = LockStore.create(config)
    assert isinstance(store, RedisTicketLockStore)
    assert store.key_prefix == f"{prefix}:lock:"
    assert store.red.connection_pool.connection_kwargs["db"] == REDIS_DB
