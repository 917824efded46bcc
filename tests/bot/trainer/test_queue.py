"""The training consumer takes the api's messages: a job enqueued from a separate Huey instance
(the api's side, a stub of the same name) on SQLite or Redis is run by `python -m trainer`,
retried, and its final failure reported to the api."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huey import Huey
from huey.storage import RedisStorage, SqliteStorage

from .conftest import running_consumer, trainer_env, wait_for_result
from .fake_api import FakeApi

REDIS_URL = "redis://127.0.0.1:6379/5"


def _stub_as_the_api_declares_it(huey: Huey) -> Any:
    """app.modelhub.queue's stub: function `train_candidate` of module `trainer`."""

    def stub(model_id: int) -> None:
        raise AssertionError("the api never runs the training task")

    stub.__module__ = "trainer"
    stub.__name__ = stub.__qualname__ = "train_candidate"
    return huey.task(retries=0)(stub)


def _stub_with_an_explicit_name(huey: Huey) -> Any:
    """The other obvious declaration: `name="trainer.train_candidate"` in some module."""

    @huey.task(name="trainer.train_candidate")
    def stub(model_id: int) -> None:
        raise AssertionError("the api never runs the training task")

    return stub


def _api_side(env: dict[str, str], storage: str) -> Huey:
    name = f"{env['JOB_QUEUE_NAME']}-training"
    if storage == "redis":
        return Huey(name, results=False, utc=True, storage_class=RedisStorage, url=REDIS_URL)
    path = env["JOB_QUEUE_URL"].split(":///", 1)[1]
    return Huey(name, results=False, utc=True, storage_class=SqliteStorage, filename=path)


@pytest.mark.parametrize("storage", ["sqlite", "redis"])
@pytest.mark.parametrize("declare", [_stub_as_the_api_declares_it, _stub_with_an_explicit_name])
def test_a_job_enqueued_by_the_api_runs_and_its_final_failure_is_reported(
    fake_api: Callable[..., FakeApi],
    tmp_path: Path,
    storage: str,
    declare: Callable[[Huey], Any],
) -> None:
    """The api's training-data answers 500: the consumer tries TRAINER_ATTEMPTS (2) times,
    then posts {status: failed} with a short error that quotes nothing of the response."""
    api = fake_api(training_status=500)
    extra = {"JOB_QUEUE_URL": REDIS_URL} if storage == "redis" else {}
    env = trainer_env(api, tmp_path, **extra)
    api_huey = _api_side(env, storage)
    task = declare(api_huey)
    if declare is _stub_as_the_api_declares_it:
        assert api_huey._registry.task_to_string(task.task_class) == "trainer.train_candidate"
    log = tmp_path / "consumer.log"
    try:
        with running_consumer(env, log):
            api_huey.enqueue(task.s(41))
            result = wait_for_result(api, "41", 60, log)
    finally:
        if storage == "redis":
            api_huey.storage.flush_all()
    assert result["status"] == "failed"
    assert result["fingerprint"] is None
    assert "HTTP 500" in result["error"]
    assert "boom" not in result["error"]  # the response body is not quoted
    assert len(result["error"]) < 100
    assert api.count("GET", "/41/training-data") == 2  # the first run and one retry
    assert api.count("PUT", "/41/artifact") == 0
    assert len(api.results["41"]) == 1
    assert api.unauthorised == 0
    text = log.read_text(errors="replace")
    assert "attempt 2 failed" in text and "failed after 2 attempts" in text
    assert "Traceback" not in text


def test_a_job_under_another_name_is_not_taken_for_a_training(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """Only `trainer.train_candidate` runs the job: a message named otherwise is refused by
    Huey's registry (logged), and nothing reaches the api."""
    api = fake_api(training_status=500)
    env = trainer_env(api, tmp_path)
    api_huey = _api_side(env, "sqlite")

    @api_huey.task(name="trainer.something_else")
    def other(model_id: int) -> None:
        raise AssertionError("never run")

    log = tmp_path / "consumer.log"
    with running_consumer(env, log):
        api_huey.enqueue(other.s(5))
        second = _stub_as_the_api_declares_it(api_huey)
        api_huey.enqueue(second.s(6))
        wait_for_result(api, "6", 60, log)
    assert "5" not in api.results
    assert api.count("GET", "/5/training-data") == 0
