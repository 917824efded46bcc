"""Petition tests: the committed database of the outbox tests (for the job's concurrency test)."""

from notify.outbox_fixtures import committed_db, outbox_db  # noqa: F401
