"""The training consumer: `bot/.venv/bin/python -m trainer` (from bot/), what `make run` and the
compose `trainer` service run. One worker thread: a training uses both cores.

    python -m trainer              # consume <JOB_QUEUE_NAME>-training from JOB_QUEUE_URL
    python -m trainer --once 7     # run the job of model 7 now, in the foreground
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from trainer import heartbeat


class _NoTracebacks(logging.Filter):
    """Huey logs a failed task with its traceback, whose values may quote data: keep the
    line, drop the traceback (the job logs its own short reason)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("huey"):
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging() -> None:
    """One line per event on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_NoTracebacks())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _heartbeat_consumer(huey: Any, path: Path, **options: Any) -> Any:
    """The Huey consumer, beating at start and at each of its own health checks while the
    queue's storage answers (trainer/heartbeat.py; docker-compose's health check)."""
    from huey.consumer import Consumer

    log = logging.getLogger("trainer")

    class HeartbeatConsumer(Consumer):  # type: ignore[misc]
        storage_failing = False

        def start(self) -> None:
            super().start()
            self.beat()

        def check_worker_health(self) -> bool:
            healthy: bool = super().check_worker_health()
            self.beat()
            return healthy

        def beat(self) -> None:
            try:
                self.huey.storage.queue_size()
            except Exception as exc:  # noqa: BLE001 - any storage failure: no beat
                if not self.storage_failing:
                    log.warning("job queue unreachable (%s): no heartbeat", type(exc).__name__)
                self.storage_failing = True
                return
            self.storage_failing = False
            heartbeat.beat(path)

    return HeartbeatConsumer(huey, **options)


def main(argv: list[str] | None = None) -> int:
    """Consume the training queue (or run one job with --once)."""
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("--once", metavar="MODEL_ID", help="run this model's job and exit")
    parser.add_argument(
        "--heartbeat",
        type=Path,
        default=heartbeat.DEFAULT_PATH,
        help="file touched while the consumer is alive (python -m trainer.heartbeat)",
    )
    args = parser.parse_args(argv)
    configure_logging()

    from trainer import processes, tasks
    from trainer.queue import is_redis

    log = logging.getLogger("trainer")
    try:
        if args.once:
            body = tasks.job.train_candidate(args.once, tasks.settings)
            return 0 if body["status"] == "candidate" else 1
        log.info(
            "training consumer on queue %s (%s)",
            tasks.settings.queue_name,
            "redis" if is_redis(tasks.huey) else "sqlite",
        )
        args.heartbeat.unlink(missing_ok=True)  # a beat from before a restart proves nothing
        consumer = _heartbeat_consumer(
            tasks.huey,
            args.heartbeat,
            workers=1,
            worker_type="thread",
            initial_delay=0.1,
            backoff=1.5,
            max_delay=10.0 if is_redis(tasks.huey) else 1.0,
            periodic=False,
            check_worker_health=True,
            health_check_interval=10,
        )
        consumer.run()
        return 0
    finally:
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
