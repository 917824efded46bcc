"""The fixed-window limiter: counts per key within a window, a fresh count in the next window,
the same in process memory and in the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from app.core.errors import AppError
from app.core.ratelimit import RateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[tuple[RateLimiter, list[float]]]:
    now = [1_800_000_000.0]  # the start of a window
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL, socket_timeout=0.5).ping()
        except redis.RedisError:
            pytest.fail("Redis on 127.0.0.1:6379 is part of this machine and required")
        made = RateLimiter(REDIS_URL, clock=lambda: now[0])
    else:
        made = RateLimiter(clock=lambda: now[0])
    yield made, now
    made.reset()


def test_limit_within_a_window_then_fresh_next_window(limiter) -> None:
    lim, now = limiter
    key = [("sender", uuid.uuid4().hex)]
    for _ in range(3):
        lim.hit("t", key, {"sender": 3})
    now[0] += 59  # still the same minute
    with pytest.raises(AppError) as raised:
        lim.hit("t", key, {"sender": 3})
    assert raised.value.status_code == 429 and "频繁" in raised.value.message
    now[0] += 1  # the next minute: counting starts again
    lim.hit("t", key, {"sender": 3})


def test_keys_are_counted_apart(limiter) -> None:
    lim, _ = limiter
    for i in range(5):
        lim.hit("t", [("sender", f"s{i}-{uuid.uuid4().hex}")], {"sender": 1})
