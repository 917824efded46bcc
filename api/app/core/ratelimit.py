"""Fixed-window rate limits, in process memory or in Redis when REDIS_URL is set.

Redis unreachable (or slow past its 0.5 s timeout) never fails a request: the limiter counts in
this process's memory, with one warning, and tries Redis again every REDIS_RETRY_SECONDS; once
it answers, counting goes back to Redis (one info line). Each replica then limits on its own
counts for that while: the limits are looser, never a 500.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

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
    ) -> None:
        self.window = window_seconds
        self.clock = clock  # tests pin it, so that counts cannot straddle two windows
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}
        self._redis = None
        # While Redis is down: when to try it again (time.monotonic), else None.
        self._redis_retry_at: float | None = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )

    @property
    def redis_down(self) -> bool:
        """True while the limiter counts in memory because Redis did not answer."""
        return self._redis_retry_at is not None

    def _incr_redis(self, key: str, bucket: int) -> int | None:
        """The count in Redis, or None when Redis does not answer (memory takes over)."""
        import redis

        assert self._redis is not None
        retry_at = self._redis_retry_at
        if retry_at is not None and time.monotonic() < retry_at:
            return None
        rkey = f"rl:{key}:{bucket}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(rkey)
            pipe.expire(rkey, self.window * 2)
            count, _ = pipe.execute()
        except (redis.RedisError, OSError) as exc:
            if retry_at is None:
                log.warning(
                    "Redis unreachable (%s): rate limits counted in this process until it is back",
                    type(exc).__name__,
                )
            self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            return None
        if retry_at is not None:
            log.info("Redis is back: rate limits counted in Redis again")
            self._redis_retry_at = None
        return int(count)

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

    def reset(self) -> None:
        """Forget all counts (tests)."""
        with self._lock:
            self._counts.clear()
        self._redis_retry_at = None
        if self._redis is not None:
            for key in self._redis.scan_iter("rl:*"):
                self._redis.delete(key)


limiter = RateLimiter(settings.redis_url)
