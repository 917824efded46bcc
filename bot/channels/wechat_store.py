"""Small shared state for the WeChat channel: nonces, message dedupe, the access token.

With a Redis URL every Rasa replica sees the same state (WeChat may deliver a retry to another
replica); without one it lives in this process, which is right for the embedded default.
"""

from __future__ import annotations

import time
from typing import Any


class MemoryStore:
    """Process-local key/value store with expiry (single-process embedded default)."""

    def __init__(self) -> None:
        """Empty store."""
        # Every operation runs without awaiting, so on one event loop each is atomic.
        self._data: dict[str, tuple[float, str]] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return item[1]

    def _sweep(self) -> None:
        if len(self._data) > 50_000:
            now = time.monotonic()
            self._data = {k: v for k, v in self._data.items() if v[0] >= now}

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """Set the key only when absent (SET NX); True when this call set it."""
        if self._live(key) is not None:
            return False
        self._sweep()
        self._data[key] = (time.monotonic() + ttl, value)
        return True

    async def get(self, key: str) -> str | None:
        """The value, or None when absent or expired."""
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float) -> None:
        """Set with expiry."""
        self._sweep()
        self._data[key] = (time.monotonic() + ttl, value)

    async def delete(self, key: str, only_if: str | None = None) -> None:
        """Delete; with `only_if`, only when the current value equals it."""
        if only_if is None or self._live(key) == only_if:
            self._data.pop(key, None)

    async def incr(self, key: str, ttl: float) -> int:
        """Add one to a counter that expires `ttl` after it was first counted (INCR)."""
        raw = self._live(key)
        if raw is None:
            self._sweep()
            self._data[key] = (time.monotonic() + ttl, "1")
            return 1
        expires = self._data[key][0]
        count = int(raw) + 1
        self._data[key] = (expires, str(count))
        return count

    async def push(self, key: str, value: str, keep: int = 1000) -> None:
        """Append to a bounded list (the dead-letter list of unsent replies)."""
        raw = self._live(key)
        items = [] if raw is None else raw.split("\n")
        items = (items + [value.replace("\n", " ")])[-keep:]
        self._data[key] = (time.monotonic() + 7 * 86400, "\n".join(items))

    async def close(self) -> None:
        """Nothing to close."""


_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisStore:
    """The same operations on Redis, shared by all replicas."""

    def __init__(self, url: str, prefix: str = "wechat:") -> None:
        """Connect lazily to the Redis at `url`; keys get `prefix`."""
        import redis.asyncio as aioredis

        self.prefix = prefix
        self.redis: Any = aioredis.Redis.from_url(
            url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    async def add(self, key: str, value: str, ttl: float) -> bool:
        """SET NX with expiry; True when this call set it."""
        return bool(await self.redis.set(self.prefix + key, value, nx=True, px=int(ttl * 1000)))

    async def get(self, key: str) -> str | None:
        """The value, or None."""
        value = await self.redis.get(self.prefix + key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str, ttl: float) -> None:
        """SET with expiry."""
        await self.redis.set(self.prefix + key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, key: str, only_if: str | None = None) -> None:
        """DEL; with `only_if`, atomically only when the value equals it."""
        if only_if is None:
            await self.redis.delete(self.prefix + key)
        else:
            await self.redis.eval(_DELETE_IF_EQUAL, 1, self.prefix + key, only_if)

    async def incr(self, key: str, ttl: float) -> int:
        """INCR; the first count sets the expiry (SET NX PX, then INCR keeps it)."""
        pipe = self.redis.pipeline()
        pipe.set(self.prefix + key, 0, nx=True, px=max(1, int(ttl * 1000)))
        pipe.incr(self.prefix + key)
        _, count = await pipe.execute()
        return int(count)

    async def push(self, key: str, value: str, keep: int = 1000) -> None:
        """RPUSH to a list trimmed to the last `keep` items."""
        await self.redis.rpush(self.prefix + key, value)
        await self.redis.ltrim(self.prefix + key, -keep, -1)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.close()


Store = MemoryStore | RedisStore


def make_store(redis_url: str | None, prefix: str = "wechat:") -> Store:
    """Redis when a URL is configured, process memory otherwise."""
    return RedisStore(redis_url, prefix) if redis_url else MemoryStore()
