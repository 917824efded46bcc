"""The job consumer: `python -m app.worker` (what `make run` and the compose `worker` run).

Threads, two workers: deliveries wait on the network, not on the CPU. `running_consumer()` runs
the same consumer inside the current process (tests, bench) without taking over its signals.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from huey.consumer import Consumer

import app.tasks  # noqa: F401  (registers every task)
from app.core.logging import configure_logging
from app.jobs.queue import huey, is_redis

WORKERS = 2


def consumer_options(workers: int = WORKERS) -> dict[str, Any]:
    """Consumer settings: threads; polling SQLite at most every second (Redis pops block)."""
    return {
        "workers": workers,
        "worker_type": "thread",
        "initial_delay": 0.05,
        "backoff": 1.5,
        "max_delay": 10.0 if is_redis() else 1.0,
        "scheduler_interval": 1,
        "periodic": True,
        "check_worker_health": True,
        "health_check_interval": 10,
    }


class _NoTracebacks(logging.Filter):
    """Huey logs a failed job with its traceback, whose values may quote personal data: keep
    the line, drop the traceback (app.jobs logs the job and the error type)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("huey"):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_huey_logs() -> None:
    """Huey's own log: warnings and errors only, without tracebacks (on every root handler)."""
    logging.getLogger("huey").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _NoTracebacks) for f in handler.filters):
            handler.addFilter(_NoTracebacks())


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves the host process's signal handlers alone."""

    def _set_signal_handlers(self) -> None:
        return None


@contextmanager
def running_consumer(workers: int = WORKERS, periodic: bool = True) -> Iterator[Consumer]:
    """Run the real Huey consumer in background threads until the block ends."""
    options = consumer_options(workers) | {"periodic": periodic}
    quiet_huey_logs()
    consumer = _QuietConsumer(huey, **options)
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)


def main(argv: list[str] | None = None) -> None:
    """Run the consumer in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m app.worker", description=__doc__)
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args(argv)
    configure_logging()
    quiet_huey_logs()
    consumer = huey.create_consumer(**consumer_options(args.workers))
    consumer.run()


if __name__ == "__main__":
    main()
