"""Job queue tests: the queue, database and consumer fixtures of tests/api/notify."""

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
