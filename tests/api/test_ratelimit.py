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


def test_expiring_counters_and_marks(limiter) -> None:
    """The login backoff's store: a counter that lives a while after its last addition, a mark
    with a lifetime, both forgotten on demand — the same in memory and in Redis."""
    lim, _ = limiter
    key = uuid.uuid4().hex
    assert lim.count(key) == 0 and lim.remaining(key) == 0
    assert [lim.add(key, 600) for _ in range(3)] == [1, 2, 3]
    assert lim.count(key) == 3 and 590 <= lim.remaining(key) <= 600
    lim.mark("block-" + key, 30)
    assert lim.count("block-" + key) == 1 and 25 <= lim.remaining("block-" + key) <= 30
    lim.forget(key, "block-" + key)
    assert lim.count(key) == 0 and lim.remaining("block-" + key) == 0


def test_memory_counters_expire() -> None:
    now = [100.0]
    lim = RateLimiter(monotonic=lambda: now[0])
    lim.add("k", 60)
    lim.mark("m", 30)
    now[0] += 29.5
    assert lim.count("k") == 1 and lim.remaining("m") == 1
    now[0] += 1
    assert lim.count("m") == 0 and lim.remaining("m") == 0
    lim.add("k", 60)  # the lifetime runs from the last addition
    now[0] += 59
    assert lim.count("k") == 2
    now[0] += 2
    assert lim.count("k") == 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_server(port: int):
    import subprocess
    import time

    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=0.5)
    for _ in range(100):
        try:
            client.ping()
            return proc, client
        except redis.RedisError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("redis-server did not start")


def test_redis_down_counts_in_memory_with_a_warning_then_back(monkeypatch, caplog) -> None:
    """A real redis-server of the test's own, stopped and started again: while it is down
    every hit is answered (limits counted in memory, one warning, never an error); once it
    is back (after the retry pause) the counts are in Redis again."""
    import logging

    from app.core import ratelimit

    port = _free_port()
    proc, client = _redis_server(port)
    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.2)
    lim = RateLimiter(f"redis://127.0.0.1:{port}/0")
    key = uuid.uuid4().hex
    try:
        lim.hit("t", [("sender", key)], {"sender": 100})
        assert any(k.startswith(b"rl:t:sender:" + key.encode()) for k in client.keys("rl:*"))
        proc.kill()
        proc.wait()
        caplog.set_level(logging.INFO, logger="app.ratelimit")
        for _ in range(3):
            lim.hit("t", [("sender", key)], {"sender": 100})
        assert lim.redis_down
        with pytest.raises(AppError) as raised:  # the memory counts still limit
            for _ in range(3):
                lim.hit("t", [("sender", "down-" + key)], {"sender": 2})
        assert raised.value.status_code == 429
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "Redis unreachable" in warnings[0].getMessage()

        proc, client = _redis_server(port)
        import time

        time.sleep(0.3)
        lim.hit("t", [("sender", key)], {"sender": 100})
        assert not lim.redis_down
        assert client.keys("rl:*"), "counting in Redis again"
        assert any("Redis is back" in r.getMessage() for r in caplog.records)
    finally:
        proc.kill()
        proc.wait()


def test_requests_answer_while_redis_is_unreachable(client, monkeypatch) -> None:
    """The api's own limiter pointed at a Redis nobody listens on: a lookup and a petition
    are answered as usual (issue 13: they answered 500)."""
    from app.core.ratelimit import limiter as app_limiter

    dead = redis.Redis.from_url(
        f"redis://127.0.0.1:{_free_port()}/0", socket_timeout=0.5, socket_connect_timeout=0.5
    )
    monkeypatch.setattr(app_limiter, "_redis", dead)
    monkeypatch.setattr(app_limiter, "_redis_retry_at", None)
    r = client.post("/api/v1/lookup", json={"address": "观象山庄3号楼2单元501"})
    assert r.status_code == 200, r.text
    body = {
        "person_name": "李桂芳",
        "phone": "13912345678",
        "address": "幸福里小区5号楼1单元302",
        "description": "住了八年还没有房本。",
        "consent": True,
        "channel": "webchat",
    }
    assert client.post("/api/v1/petitions", json=body).status_code == 201
    assert app_limiter.redis_down
