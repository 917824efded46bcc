"""The job consumer: `python -m app.worker` (what `make run` and the compose `worker` run).

Threads, two workers: deliveries wait on the network, not on the CPU. `running_consumer()` runs
the same consumer inside the current process (tests, bench) without taking over its signals.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from huey.consumer import Consumer

import app.tasks  # noqa: F401  (registers every task)
from app.core.logging import configure_logging
from app.jobs import heartbeat
from app.jobs.queue import huey, is_redis

log = logging.getLogger("app.worker")

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


class _HeartbeatConsumer(Consumer):  # type: ignore[misc]
    """The consumer of `python -m app.worker`: at start and at each of its own health checks
    (threads alive, dead ones restarted) it beats, when the queue's storage answers
    (app/jobs/heartbeat.py; docker-compose's health check reads the file)."""

    def __init__(self, *args: Any, heartbeat_path: Path, **options: Any) -> None:
        super().__init__(*args, **options)
        self.heartbeat_path = heartbeat_path
        self._storage_failing = False

    def start(self) -> None:
        super().start()
        self._beat()

    def check_worker_health(self) -> bool:
        healthy: bool = super().check_worker_health()
        self._beat()
        return healthy

    def _beat(self) -> None:
        try:
            self.huey.storage.queue_size()
        except Exception as exc:  # noqa: BLE001 - any storage failure: no beat
            if not self._storage_failing:
                log.warning("job queue storage unreachable (%s): no heartbeat", type(exc).__name__)
            self._storage_failing = True
            return
        if self._storage_failing:
            log.warning("job queue storage answers again")
        self._storage_failing = False
        heartbeat.beat(self.heartbeat_path)


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
    parser.add_argument(
        "--heartbeat",
        type=Path,
        default=heartbeat.DEFAULT_PATH,
        help="file touched while the consumer is alive (python -m app.jobs.heartbeat)",
    )
    args = parser.parse_args(argv)
    configure_logging()
    quiet_huey_logs()
    args.heartbeat.unlink(missing_ok=True)  # a beat from before a restart proves nothing
    consumer = _HeartbeatConsumer(
        huey, heartbeat_path=args.heartbeat, **consumer_options(args.workers)
    )
    consumer.run()


if __name__ == "__main__":
    main()
