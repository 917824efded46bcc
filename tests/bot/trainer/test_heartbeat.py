"""docker-compose's health check of the trainer: `python -m trainer.heartbeat` passes while the
real consumer (`python -m trainer`) beats, fails on a stale beat, and a consumer whose queue
storage does not answer never beats."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import BOT_DIR, BOT_PY, trainer_env
from .fake_api import FakeApi

MAX_AGE = 60.0  # trainer/heartbeat.py


def _wait(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _check(path: Path) -> int:
    return subprocess.run(
        [str(BOT_PY), "-m", "trainer.heartbeat", "--path", str(path)],
        cwd=BOT_DIR,
        capture_output=True,
        timeout=30,
    ).returncode


@pytest.fixture
def start_trainer(
    tmp_path: Path, fake_api: Callable[..., FakeApi]
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> subprocess.Popen[bytes]:
        env = trainer_env(fake_api(), tmp_path, **extra)
        with (tmp_path / "trainer.log").open("wb") as log:
            proc = subprocess.Popen(
                [str(BOT_PY), "-m", "trainer", "--heartbeat", str(tmp_path / "alive")],
                cwd=BOT_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_the_training_consumer_beats_and_the_check_reads_it(
    tmp_path: Path, start_trainer: Callable[..., subprocess.Popen[bytes]]
) -> None:
    alive = tmp_path / "alive"
    assert _check(alive) == 1
    trainer = start_trainer()
    _wait(alive.exists, timeout=60)
    assert trainer.poll() is None
    assert _check(alive) == 0
    old = time.time() - 2 * MAX_AGE
    os.utime(alive, (old, old))
    assert _check(alive) == 1
    _wait(lambda: _check(alive) == 0, timeout=20)  # the consumer's loop beats every 10 s


def test_no_beat_while_the_queue_storage_does_not_answer(
    tmp_path: Path, start_trainer: Callable[..., subprocess.Popen[bytes]]
) -> None:
    alive = tmp_path / "alive"
    alive.touch()  # left from before a restart: removed at start
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    trainer = start_trainer(JOB_QUEUE_URL=f"redis://127.0.0.1:{closed_port}/0")
    log = tmp_path / "trainer.log"
    _wait(lambda: "no heartbeat" in log.read_text(errors="replace"), timeout=60)
    assert trainer.poll() is None
    assert not alive.exists()
    assert _check(alive) == 1
