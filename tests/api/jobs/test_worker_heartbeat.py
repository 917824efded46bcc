"""docker-compose's health check of the worker: `python -m app.jobs.heartbeat` passes while the
real consumer (`python -m app.worker`) beats, fails on a stale or missing beat, and a consumer
whose queue storage does not answer never beats."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.config import API_DIR
from app.jobs import heartbeat


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _check(path: Path) -> int:
    """The compose health check, as a command (standard library only)."""
    return subprocess.run(
        [sys.executable, "-m", "app.jobs.heartbeat", "--path", str(path)],
        cwd=API_DIR,
        capture_output=True,
        timeout=30,
    ).returncode


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(queue_url: str) -> subprocess.Popen[str]:
        env = os.environ | {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "JOB_QUEUE_URL": queue_url,
            "JOB_QUEUE_NAME": f"heartbeat-{os.getpid()}",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.worker", "--heartbeat", str(tmp_path / "alive")],
            cwd=API_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "worker.log").open("w"),
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_the_consumer_beats_and_the_check_reads_it(
    tmp_path: Path, start_worker: Callable[[str], subprocess.Popen[str]]
) -> None:
    alive = tmp_path / "alive"
    assert _check(alive) == 1  # no beat yet
    worker = start_worker(f"sqlite:///{tmp_path / 'jobs.db'}")
    _wait(alive.exists, timeout=30)
    assert worker.poll() is None
    assert _check(alive) == 0
    # Stale: the check fails; the consumer's own health loop (every 10 s) beats again.
    old = time.time() - 2 * heartbeat.MAX_AGE
    os.utime(alive, (old, old))
    assert _check(alive) == 1
    _wait(lambda: _check(alive) == 0, timeout=20)
    assert worker.poll() is None


def test_no_beat_while_the_queue_storage_does_not_answer(
    tmp_path: Path, start_worker: Callable[[str], subprocess.Popen[str]]
) -> None:
    """Redis unreachable: the consumer runs but never beats (and a beat left from before its
    start is removed), so the container turns unhealthy."""
    alive = tmp_path / "alive"
    heartbeat.beat(alive)
    assert _check(alive) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    worker = start_worker(f"redis://127.0.0.1:{closed_port}/0")
    log = tmp_path / "worker.log"
    _wait(lambda: "job queue storage unreachable" in log.read_text(), timeout=30)
    assert worker.poll() is None
    assert not alive.exists()
    assert _check(alive) == 1
