"""Outbox tests: the fixtures live in outbox_fixtures (shared with tests/api/jobs)."""

from notify.outbox_fixtures import (  # noqa: F401
    any_queue,
    channel,
    channel_server,
    committed_db,
    outbox_db,
    redis_queue,
    sqlite_queue,
    worker,
)
