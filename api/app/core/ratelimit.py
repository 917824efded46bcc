"""Fixed-window rate limits, in process memory or in Redis when REDIS_URL is set.

Redis unreachable (or slow past its 0.5 s timeout) never fails a request: the limiter counts in
this process's memory, with one warning, and tries Redis again every REDIS_RETRY_SECONDS; once
it answers, counting goes back to Redis (one info line). Each replica then limits on its own
counts for that while: the limits are looser, never a 500.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from app.core.config import settings
from app.core.errors import AppError

RATE_LIMITED_MESSAGE = "查询太频繁了，请一分钟后再试。如需帮助，可以说“转人工”。"
REDIS_RETRY_SECONDS = 5.0
log = logging.getLogger("app.ratelimit")


class RateLimiter:
    """Counts hits per key and window; `hit` raises a Chinese 429 when a limit is passed."""

    def __init__(
        self,
        redis_url: str | None = None,
        window_seconds: int = 60,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.clock = clock  # tests pin it, so that counts cannot straddle two windows
        # Lifetimes of the memory counters and of the Redis retry (tests move it forward).
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        # key -> (count, expires at on time.monotonic)
        self._expiring: dict[str, tuple[int, float]] = {}
        self._redis: Any = None
        # While Redis is down: when to try it again (time.monotonic), else None.
        self._redis_retry_at: float | None = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )

    @property
    def in_memory(self) -> bool:
        """True when counts live in this process only (no REDIS_URL): `hit` does no I/O."""
        return self._redis is None

    @property
    def redis_down(self) -> bool:
        """True while the limiter counts in memory because Redis did not answer."""
        return self._redis_retry_at is not None

    def _redis_do(self, work: Callable[[Any], Any]) -> tuple[bool, Any]:
        """(True, result) from Redis, or (False, None) when Redis does not answer (then memory
        takes over until the next retry)."""
        import redis

        assert self._redis is not None
        retry_at = self._redis_retry_at
        if retry_at is not None and self.monotonic() < retry_at:
            return False, None
        try:
            result = work(self._redis)
        except (redis.RedisError, OSError) as exc:
            if retry_at is None:
                log.warning(
                    "Redis unreachable (%s): rate limits counted in this process until it is back",
                    type(exc).__name__,
                )
            self._redis_retry_at = self.monotonic() + REDIS_RETRY_SECONDS
            return False, None
        if retry_at is not None:
            log.info("Redis is back: rate limits counted in Redis again")
            self._redis_retry_at = None
        return True, result

    def _incr_redis(self, key: str, bucket: int) -> int | None:
        """The count in Redis, or None when Redis does not answer (memory takes over)."""
        rkey = f"rl:{key}:{bucket}"

        def work(r: Any) -> int:
            pipe = r.pipeline()
            pipe.incr(rkey)
            pipe.expire(rkey, self.window * 2)
            count, _ = pipe.execute()
            return int(count)

        ok, count = self._redis_do(work)
        return int(count) if ok else None

    def _incr(self, key: str) -> int:
        bucket = int(self.clock()) // self.window
        if self._redis is not None:
            count = self._incr_redis(key, bucket)
            if count is not None:
                return count
        with self._lock:
            old_bucket, count = self._counts.get(key, (bucket, 0))
            count = count + 1 if old_bucket == bucket else 1
            self._counts[key] = (bucket, count)
            if len(self._counts) > 100_000:  # keep memory bounded on long runs
                self._counts = {k: v for k, v in self._counts.items() if v[0] == bucket}
            return count

    def hit(
        self,
        scope: str,
        keys: Iterable[tuple[str, str]],
        limits: dict[str, int],
        message: str = RATE_LIMITED_MESSAGE,
    ) -> None:
        """Count one request for each key; raise 429 when any key is over its limit."""
        for kind, key in keys:
            limit = limits.get(kind)
            if limit is not None and self._incr(f"{scope}:{kind}:{key}") > limit:
                raise AppError(429, "rate_limited", message, {"retry_after": self.window})

    # Counters and marks with their own lifetime (the login backoff, app/staff/throttle.py):
    # in Redis when it answers, else in memory, like the windows above.

    def _memory_live(self, key: str) -> tuple[int, float] | None:
        entry = self._expiring.get(key)
        if entry is None:
            return None
        if entry[1] <= self.monotonic():
            self._expiring.pop(key, None)
            return None
        return entry

    def add(self, key: str, ttl_seconds: float) -> int:
        """Add one to `key`'s counter, which lives `ttl_seconds` after its last addition."""
        rkey = f"rl:x:{key}"
        ttl = max(1, int(ttl_seconds))
        if self._redis is not None:

            def work(r: Any) -> int:
                pipe = r.pipeline()
                pipe.incr(rkey)
                pipe.expire(rkey, ttl)
                count, _ = pipe.execute()
                return int(count)

            ok, count = self._redis_do(work)
            if ok:
                return int(count)
        with self._lock:
            entry = self._memory_live(key)
            count = (entry[0] if entry else 0) + 1
            self._expiring[key] = (count, self.monotonic() + ttl)
            if len(self._expiring) > 100_000:
                now = self.monotonic()
                self._expiring = {k: v for k, v in self._expiring.items() if v[1] > now}
            return count

    def mark(self, key: str, ttl_seconds: float) -> None:
        """Set `key` for `ttl_seconds` (a block until then)."""
        rkey = f"rl:x:{key}"
        ttl = max(1, int(ttl_seconds))
        if self._redis is not None:
            ok, _ = self._redis_do(lambda r: r.set(rkey, 1, ex=ttl))
            if ok:
                return
        with self._lock:
            self._expiring[key] = (1, self.monotonic() + ttl)

    def count(self, key: str) -> int:
        """The counter or mark of `key`, 0 when it has none or it expired."""
        rkey = f"rl:x:{key}"
        if self._redis is not None:
            ok, value = self._redis_do(lambda r: r.get(rkey))
            if ok:
                return int(value or 0)
        with self._lock:
            entry = self._memory_live(key)
            return entry[0] if entry else 0

    def remaining(self, key: str) -> int:
        """Whole seconds until `key` expires (at least 1 while it lives), 0 when it has none."""
        rkey = f"rl:x:{key}"
        if self._redis is not None:
            ok, ttl = self._redis_do(lambda r: r.ttl(rkey))
            if ok:
                return max(0, int(ttl or 0))
        with self._lock:
            entry = self._memory_live(key)
            return max(1, math.ceil(entry[1] - self.monotonic())) if entry else 0

    def forget(self, *keys: str) -> None:
        """Drop counters and marks (a successful login clears its failures)."""
        if self._redis is not None:
            self._redis_do(lambda r: r.delete(*[f"rl:x:{k}" for k in keys]))
        with self._lock:
            for key in keys:
                self._expiring.pop(key, None)

    def reset(self) -> None:
        """Forget all counts (tests)."""
        with self._lock:
            self._counts.clear()
            self._expiring.clear()
        self._redis_retry_at = None
        if self._redis is not None:
            for key in self._redis.scan_iter("rl:*"):
                self._redis.delete(key)


limiter = RateLimiter(settings.redis_url)
