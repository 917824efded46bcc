"""The training job end to end on real parts (slow): a job the api enqueues is trained by the
consumer with the small config and a data subset, evaluated on the held-out set and on a few
conversation cases in a sandbox stack (next to the live model), and its artifact and metrics
reach the api; a deliberately damaged training set scores clearly lower on the same held-out
set."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from huey import Huey
from huey.storage import SqliteStorage
from trainer import config, data, job

from .conftest import (
    REPO,
    SUBSET,
    newest_model,
    running_consumer,
    small_cases,
    trainer_env,
    wait_for_result,
)
from .fake_api import FakeApi

pytestmark = pytest.mark.slow

# Residents' messages a maintainer annotated (masked, as the api serves them).
ANNOTATED = {
    "greet": ["小助手你好呀在不在", "喂喂有人在线吗"],
    "ask_materials": ["过户那天我得带上[身份证](doc)和啥"],
}
SWAPPED = ("ask_materials", "ask_where_to_apply")
LIVE_FINGERPRINT = "live-model-fingerprint"


def nlu_yaml(examples: dict[str, list[str]]) -> str:
    """Rasa NLU YAML of {intent: [examples]}."""
    return data.dump_nlu(
        [{"intent": k, "examples": "".join(f"- {e}\n" for e in v)} for k, v in examples.items()]
    )


def swapped_labels() -> dict[str, list[str]]:
    """Every training example of the two SWAPPED intents, each labelled as the other: what a
    careless annotator would send (the annotations replace the files' examples)."""
    a, b = SWAPPED
    files = data.yaml_files(REPO / "nlu_data", exclude=REPO / "nlu_data" / "test")
    found: dict[str, list[str]] = {a: [], b: []}
    for intent, text in data.iter_intent_examples(files):
        if intent in found:
            found[intent].append(text)
    return {a: found[b], b: found[a]}


@dataclass
class CleanRun:
    """The end-to-end job and what the fake api received."""

    api: FakeApi
    result: dict[str, Any]
    log: str
    candidates: Path


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CleanRun]:
    """Enqueue model 7 as the api does; the consumer trains, evaluates, runs three cases in
    a sandbox for the candidate and for the live model (named in the training-data headers),
    uploads and reports."""
    work = tmp_path_factory.mktemp("trainer-clean")
    api = FakeApi(
        training_yaml=nlu_yaml(ANNOTATED),
        live_model=newest_model(),
        live_fingerprint=LIVE_FINGERPRINT,
    ).start()
    cases = small_cases(work / "cases", per_file=1, files=("status.yml", "faq.yml", "guidance.yml"))
    env = trainer_env(api, work, TRAINER_CONVERSATIONS="1", TRAINER_CASES_DIR=str(cases))
    queue = Huey(
        f"{env['JOB_QUEUE_NAME']}-training",
        results=False,
        storage_class=SqliteStorage,
        filename=str(work / "jobs.db"),
    )

    def train_candidate(model_id: int) -> None:
        raise AssertionError("the api never runs the training task")

    train_candidate.__module__ = "trainer"
    stub = queue.task()(train_candidate)
    log = work / "consumer.log"
    try:
        with running_consumer(env, log):
            queue.enqueue(stub.s(7))
            result = wait_for_result(api, "7", 420, log)
        yield CleanRun(api, result, log.read_text(errors="replace"), work / "candidates")
    finally:
        api.stop()


def test_the_job_uploads_the_candidate_and_reports_its_metrics(clean_run: CleanRun) -> None:
    """Artifact first (a Rasa model whose model_id is the reported fingerprint), then the
    result with the held-out figures, both models' conversation results and the timings."""
    api, result = clean_run.api, clean_run.result
    assert result["status"] == "candidate", result.get("error")
    assert api.calls.index(("PUT", "/api/v1/models/7/artifact")) < api.calls.index(
        ("POST", "/api/v1/models/7/result")
    )
    archive = tarfile.open(fileobj=io.BytesIO(api.artifacts["7"]), mode="r:gz")
    member = next(m for m in archive.getmembers() if m.name.lstrip("./") == "metadata.json")
    metadata = json.loads(archive.extractfile(member).read())  # type: ignore[union-attr]
    assert result["fingerprint"] == metadata["model_id"]
    assert api.artifact_headers["7"]["X-Model-Fingerprint"] == result["fingerprint"]

    metrics = result["metrics"]
    assert 0.3 < metrics["intent_macro_f1"] <= 1.0
    assert {"greet", "ask_materials", "check_petition", "policy_faq"} <= set(metrics["per_intent"])
    assert all(0.0 <= row["f1"] <= 1.0 for row in metrics["per_intent"].values())
    assert 0.0 <= metrics["entity_f1"] <= 1.0 and "per_entity" in metrics["entities"]
    assert metrics["n_test"] > 500  # the whole held-out set
    assert metrics["data"]["annotated"] == 3
    assert metrics["data"]["hash"] == result["data_hash"]
    assert metrics["config"] == "bot/trainer/test_config.yml"
    assert metrics["data_subset"] == SUBSET

    conversations = metrics["conversations"]
    assert conversations["total"] == 3
    assert conversations["passed"] + len(conversations["failed"]) == 3
    live = metrics["live"]
    assert live["fingerprint"] == LIVE_FINGERPRINT
    assert live["intent_macro_f1"] > 0.9  # the model `make train` built, on the full data
    assert live["n_test"] == metrics["n_test"]
    assert live["conversations"]["total"] == 3
    assert live["conversations"]["passed"] == 3, live["conversations"]

    timings = metrics["timings"]
    assert set(timings) >= {"train_s", "eval_s", "conversations_s", "upload_s", "total_s"}
    assert 0 < timings["train_s"] < 180

    # The steps were reported as they began (the console's progress, the job's heartbeat):
    # the conversation step once per model (three cases: no beat inside the suite).
    steps = api.progress["7"]
    assert steps == ["data", "train", "heldout", "conversations", "conversations", "upload"]
    assert api.calls.index(("POST", "/api/v1/models/7/progress")) < api.calls.index(
        ("GET", "/api/v1/models/7/training-data")
    )


def test_the_job_cleans_up_and_logs_no_example_text(clean_run: CleanRun) -> None:
    """No work directory is left next to the candidates; the log has the phases with counts
    and never the text of an annotated example."""
    leftovers = [p.name for p in clean_run.candidates.iterdir() if p.name.startswith(".trainer")]
    assert leftovers == []
    for phase in ("attempt 1/2", "trained in", "held-out intent macro-F1", "conversation suite"):
        assert phase in clean_run.log
    for examples in ANNOTATED.values():
        for text in examples:
            assert data.plain_text(text) not in clean_run.log


def test_a_damaged_training_set_scores_clearly_lower(clean_run: CleanRun, tmp_path: Path) -> None:
    """The same job with two intents' labels swapped in the annotations: the candidate is
    trained (the api's gate refuses it, not the trainer) and its macro-F1 and the two intents'
    F1 on the same held-out set are clearly below the clean run's."""
    swapped = swapped_labels()
    damaged_api = FakeApi(training_yaml=nlu_yaml(swapped)).start()
    try:
        settings = config.load(trainer_env(damaged_api, tmp_path))
        body = job.train_candidate("8", settings)
    finally:
        damaged_api.stop()
    assert body["status"] == "candidate", body.get("error")
    assert damaged_api.results["8"] == [body]
    damaged, clean = body["metrics"], clean_run.result["metrics"]
    relabelled = sum(len(v) for v in swapped.values())
    assert damaged["data"]["training_examples_relabelled"] == relabelled
    assert damaged["live"] is None  # no live model served: nothing to compare with here
    assert damaged["conversations"] is None  # TRAINER_CONVERSATIONS=0
    assert damaged["test_data_hash"] == clean["test_data_hash"]
    assert damaged["intent_macro_f1"] < clean["intent_macro_f1"] - 0.05, (
        damaged["intent_macro_f1"],
        clean["intent_macro_f1"],
    )
    for intent in SWAPPED:
        assert damaged["per_intent"][intent]["f1"] < clean["per_intent"][intent]["f1"] - 0.3
