"""The job consumer's heartbeat, read by docker-compose's health check of the `trainer`.

`python -m trainer` touches the file each time its main loop finds its worker thread and
the scheduler alive and the queue's storage answering (every `health_check_interval`, 10 s; a
training runs in the worker thread, so the loop beats on through it).
`python -m trainer.heartbeat` (standard library only: cheap every 30 s) exits 0 while the file
is fresher than MAX_AGE, 1 otherwise: a hung or dead consumer, or a queue it cannot reach.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PATH = Path(tempfile.gettempdir()) / "fangben-trainer.alive"
# Several missed beats (one every 10 s), not one slow storage call.
MAX_AGE = 60.0


def beat(path: Path) -> None:
    """Record that the consumer is alive now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def age(path: Path) -> float | None:
    """Seconds since the last beat, None when there was none."""
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Exit status 0 when the consumer beat within --max-age seconds."""
    parser = argparse.ArgumentParser(prog="python -m trainer.heartbeat", description=__doc__)
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--max-age", type=float, default=MAX_AGE)
    args = parser.parse_args(argv)
    seconds = age(args.path)
    if seconds is None:
        print(f"no heartbeat at {args.path}", file=sys.stderr)
        return 1
    if seconds > args.max_age:
        print(f"last heartbeat {seconds:.0f} s ago", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
