"""Fixtures of the trainer's tests: the fake api server, the real consumer
(`python -m trainer` in the bot environment) on a queue of its own, a small case set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BOT_DIR = REPO / "bot"
BOT_PY = BOT_DIR / ".venv" / "bin" / "python"
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

from .fake_api import TOKEN, FakeApi  # noqa: E402

TEST_CONFIG = BOT_DIR / "trainer" / "test_config.yml"
# Examples per intent of nlu_data/ in the tests' trainings (a few seconds each).
SUBSET = 20


@pytest.fixture
def fake_api() -> Iterator[Callable[..., FakeApi]]:
    """Start fake api servers (`fake_api(training_yaml=…)`); all stopped afterwards."""
    started: list[FakeApi] = []

    def make(**kwargs: Any) -> FakeApi:
        api = FakeApi(**kwargs).start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


def trainer_env(api: FakeApi, workdir: Path, **extra: str) -> dict[str, str]:
    """The trainer's environment for a test: the fake api, a queue and candidates dir of its
    own, the small config and data subset, fast retries."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "API_URL": api.url,
            "SERVICE_TOKEN": TOKEN,
            "JOB_QUEUE_URL": f"sqlite:///{workdir / 'jobs.db'}",
            "JOB_QUEUE_NAME": f"test-{uuid.uuid4().hex[:8]}",
            "MODEL_CANDIDATES_DIR": str(workdir / "candidates"),
            "TRAINER_CONFIG": str(TEST_CONFIG),
            "TRAINER_DATA_SUBSET": str(SUBSET),
            "TRAINER_CONVERSATIONS": "0",
            "TRAINER_ATTEMPTS": "2",
            "TRAINER_RETRY_DELAY": "0.2",
            "PYTHONDONTWRITEBYTECODE": "1",
            **extra,
        }
    )
    return env


@contextmanager
def running_consumer(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`bot/.venv/bin/python -m trainer` from bot/, stopped (SIGTERM) on exit."""
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [str(BOT_PY), "-m", "trainer"],
            cwd=BOT_DIR,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "Huey consumer started" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "consumer did not start"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def wait_for_result(api: FakeApi, model_id: str, seconds: float, log: Path) -> dict[str, Any]:
    """The first result the trainer posted for `model_id` (fails after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not api.results.get(model_id):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
        time.sleep(0.2)
    return api.results[model_id][0]


def small_cases(target: Path, per_file: int = 2, files: tuple[str, ...] = ("status.yml",)) -> Path:
    """A copy of the first conversations of some case files (a suite that runs in seconds)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        document = yaml.safe_load((REPO / "tests/conversations/cases" / name).read_text("utf-8"))
        document["conversations"] = document["conversations"][:per_file]
        (target / name).write_text(yaml.safe_dump(document, allow_unicode=True), "utf-8")
    return target


def newest_model() -> Path:
    """The model `make train` built (scripts/test.d/20-bot.sh trains it before these tests)."""
    models = sorted((BOT_DIR / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    assert models, "no trained model in bot/models/: run `make train` first"
    return models[-1]
