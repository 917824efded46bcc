"""The training consumer: `bot/.venv/bin/python -m trainer` (from bot/), what `make run` and the
compose `trainer` service run. One worker thread: a training uses both cores.

    python -m trainer              # consume <JOB_QUEUE_NAME>-training from JOB_QUEUE_URL
    python -m trainer --once 7     # run the job of model 7 now, in the foreground
"""

from __future__ import annotations

import argparse
import logging
import sys


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


def main(argv: list[str] | None = None) -> int:
    """Consume the training queue (or run one job with --once)."""
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("--once", metavar="MODEL_ID", help="run this model's job and exit")
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
        consumer = tasks.huey.create_consumer(
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
