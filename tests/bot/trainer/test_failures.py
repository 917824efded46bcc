"""The trainer's client of the api's model endpoints, and the job's failures: a time-boxed
training that runs over, a training Rasa refuses, a wrong service token — each reported as
`failed` with a short reason and nothing left running."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from trainer import config, job
from trainer.api_client import ApiClient
from trainer.errors import TrainerError

from .conftest import newest_model, trainer_env
from .fake_api import FakeApi


def _rasa_children(marker: str) -> list[str]:
    """Command lines of running processes that mention `marker` (the test's own paths)."""
    done = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in done.stdout.splitlines() if marker in line and "rasa" in line]


def test_the_client_reads_the_live_model_from_headers_or_pulls_it(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """training-data names the live model's path and fingerprint; GET /live gives the file
    with its ETag; no live model is a 404, not an error."""
    live = newest_model()
    api = fake_api(training_yaml="nlu: []\n", live_model=live, live_fingerprint="fp-123")
    client = ApiClient(config.load(trainer_env(api, tmp_path)))
    try:
        given = client.training_data(3)
        assert (given.yaml_text, given.live_path, given.live_fingerprint) == (
            "nlu: []\n",
            live,
            "fp-123",
        )
        target = tmp_path / "live.tar.gz"
        assert client.download_live(target) == "fp-123"
        assert target.read_bytes() == live.read_bytes()
        api.live_model = None
        assert client.download_live(tmp_path / "none.tar.gz") is None
        assert client.training_data(3).live_path is None
    finally:
        client.close()


def test_a_wrong_service_token_is_a_short_error(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """The api refuses the token: TrainerError naming the step and the status only."""
    api = fake_api()
    settings = config.load({**trainer_env(api, tmp_path), "SERVICE_TOKEN": "wrong"})
    client = ApiClient(settings)
    try:
        client.training_data(3)
        raise AssertionError("no error")
    except TrainerError as exc:
        assert str(exc) == "获取训练数据失败（api 返回 HTTP 401）"
    finally:
        client.close()
    assert api.unauthorised == 1


def test_a_training_over_its_time_box_is_stopped_and_reported(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """TRAINER_TRAIN_TIMEOUT=2: rasa train is stopped (its whole process group) and the job
    reports `failed` with the time-out; the step's output is kept next to the candidates."""
    api = fake_api()
    env = trainer_env(api, tmp_path, TRAINER_TRAIN_TIMEOUT="2", TRAINER_ATTEMPTS="1")
    body = job.train_candidate(11, config.load(env))
    assert body["status"] == "failed"
    assert body["error"] == "训练超时（超过 2 秒）"
    assert api.results["11"] == [body]
    assert api.count("PUT", "/11/artifact") == 0
    assert _rasa_children(str(tmp_path)) == []
    assert (tmp_path / "candidates" / "logs" / "model-11-train.log").is_file()
    assert not [p for p in (tmp_path / "candidates").iterdir() if p.name.startswith(".trainer")]


def test_a_model_no_longer_training_stops_the_job_without_retry(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """The api answers 409 to the first progress report (it took the training as lost, or it
    was failed meanwhile): the job stops at once, fetches nothing and reports nothing."""
    api = fake_api()
    api.progress_status = 409
    env = trainer_env(api, tmp_path, TRAINER_ATTEMPTS="3", TRAINER_RETRY_DELAY="30")
    body = job.train_candidate(13, config.load(env))
    assert body["status"] == "abandoned"
    assert api.progress["13"] == ["data"]
    assert api.count("GET", "/13/training-data") == 0
    assert "13" not in api.results


@pytest.mark.slow
def test_a_training_rasa_refuses_is_reported(
    fake_api: Callable[..., FakeApi], tmp_path: Path
) -> None:
    """A config naming a component that does not exist: rasa train exits non-zero; the
    result says so with the exit status only (retries: tests/bot/trainer/test_queue.py)."""
    bad = tmp_path / "bad_config.yml"
    bad.write_text(
        "recipe: default.v1\nlanguage: zh\npipeline:\n  - name: NoSuchComponent\npolicies: []\n"
    )
    api = fake_api()
    env = trainer_env(api, tmp_path, TRAINER_CONFIG=str(bad), TRAINER_ATTEMPTS="1")
    body = job.train_candidate(12, config.load(env))
    assert body["status"] == "failed"
    assert body["error"].startswith("训练失败（退出码 ")
    assert "NoSuchComponent" not in body["error"]
    assert api.count("GET", "/12/training-data") == 1
    assert api.results["12"] == [body]
