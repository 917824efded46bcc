"""One training job: annotated examples from the api → a candidate model → its held-out and
conversation figures, next to the live model's → the artifact and the result back to the api.

The job retries itself (`TRAINER_ATTEMPTS`, first delay `TRAINER_RETRY_DELAY`, doubled each
time) whatever retries the enqueuing side declared, and after the last attempt reports
`{status: failed, error}` with a short message (no example text, no personal data). Progress
goes to the log (counts and figures only); the phases' durations go into the result's
`metrics.timings`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer import conversations, rasa_run, sandbox
from trainer import data as training_data
from trainer.api_client import ApiClient, TrainingData, model_fingerprint
from trainer.config import REPO_DIR, Settings
from trainer.errors import Abandoned, TrainerError, safe_message

log = logging.getLogger("trainer")


@dataclass
class LiveModel:
    """The model residents talk to now, to compare the candidate with."""

    path: Path
    fingerprint: str


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_DIR))
    except ValueError:
        return str(path)


@contextmanager
def _workdir(settings: Settings, model_id: int | str) -> Iterator[Path]:
    settings.candidates_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".trainer-{model_id}-", dir=settings.candidates_dir))
    try:
        yield work
    finally:
        if settings.keep_workdir:
            log.info("model %s: work directory kept in %s", model_id, work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _keep_log(settings: Settings, model_id: int | str, log_file: Path) -> None:
    """A failed step's Rasa output next to the candidates (its lines may quote masked
    examples, so it is never copied into the log or the result)."""
    if log_file.exists():
        logs = settings.candidates_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        target = logs / f"model-{model_id}-{log_file.name}"
        shutil.copyfile(log_file, target)
        log.info("model %s: output of the failed step in %s", model_id, target)


def _live_model(api: ApiClient, given: TrainingData, work: Path) -> LiveModel | None:
    """The live model: on a shared disk when the api names it, else pulled from the api."""
    if given.live_path is not None and given.live_path.is_file():
        fingerprint = given.live_fingerprint or model_fingerprint(given.live_path)
        return LiveModel(given.live_path, fingerprint)
    target = work / "live.tar.gz"
    pulled = api.download_live(target)
    return LiveModel(target, pulled) if pulled else None


def _heldout(settings: Settings, model: Path, work: Path, name: str, model_id: int | str) -> dict:
    log_file = work / f"evaluate-{name}.log"
    try:
        return rasa_run.evaluate(settings, model, work / f"results-{name}", log_file)
    except TrainerError:
        _keep_log(settings, model_id, log_file)
        raise


def run_once(
    model_id: int | str, settings: Settings, api: ApiClient, attempt: int = 1
) -> dict[str, Any]:
    """One attempt of the job; the result body it posted."""
    started = time.monotonic()
    timings: dict[str, float] = {}
    with _workdir(settings, model_id) as work:
        api.progress(model_id, "data")
        given = api.training_data(model_id)
        report = training_data.build(
            work / "data",
            settings.nlu_dir,
            settings.heldout_dir,
            given.yaml_text,
            subset=settings.data_subset,
        )
        facts = report.as_metrics()
        log.info(
            "model %s: %d training files, %d examples of %d intents; %d annotated examples "
            "(%d dropped: in the held-out set, %d duplicates), %d training examples replaced "
            "by annotations (%d relabelled)",
            model_id,
            facts["files"],
            facts["examples"],
            facts["intents"],
            facts["annotated"],
            facts["annotated_dropped_heldout"],
            facts["annotated_duplicates"],
            facts["training_examples_replaced"],
            facts["training_examples_relabelled"],
        )

        api.progress(model_id, "train")
        log.info("model %s: training (time-box %.0f s)", model_id, settings.train_timeout)
        clock = time.monotonic()
        train_log = work / "train.log"
        try:
            model = rasa_run.train(
                settings, work / "data", work / "out", f"candidate-{model_id}", train_log
            )
        except TrainerError:
            _keep_log(settings, model_id, train_log)
            raise
        timings["train_s"] = round(time.monotonic() - clock, 1)
        fingerprint = model_fingerprint(model)
        log.info("model %s: trained in %.0f s", model_id, timings["train_s"])

        api.progress(model_id, "heldout")
        clock = time.monotonic()
        metrics: dict[str, Any] = _heldout(settings, model, work, "candidate", model_id)
        live = _live_model(api, given, work)
        live_metrics: dict[str, Any] | None = None
        if live is not None:
            live_metrics = {
                "fingerprint": live.fingerprint,
                **_heldout(settings, live.path, work, "live", model_id),
            }
        timings["eval_s"] = round(time.monotonic() - clock, 1)
        log.info(
            "model %s: held-out intent macro-F1 %.3f, entity F1 %.3f (live model: %s)",
            model_id,
            metrics["intent_macro_f1"],
            metrics["entity_f1"],
            f"{live_metrics['intent_macro_f1']:.3f}" if live_metrics else "none",
        )

        metrics["conversations"] = None
        if live_metrics is not None:
            live_metrics["conversations"] = None
        if settings.conversations:

            def beat() -> None:
                api.progress(model_id, "conversations")

            beat()
            clock = time.monotonic()
            with sandbox.backend(settings, work / "sandbox") as box:
                with sandbox.rasa_server(box, model, "candidate") as webhook:
                    metrics["conversations"] = conversations.run_suite(
                        settings.conversations_dir, settings.cases_dir, box, webhook, beat
                    )
                if live is not None and live_metrics is not None:
                    beat()
                    with sandbox.rasa_server(box, live.path, "live") as webhook:
                        live_metrics["conversations"] = conversations.run_suite(
                            settings.conversations_dir, settings.cases_dir, box, webhook, beat
                        )
            timings["conversations_s"] = round(time.monotonic() - clock, 1)
            result = metrics["conversations"]
            live_result = live_metrics["conversations"] if live_metrics else None
            log.info(
                "model %s: conversation suite %d/%d passed (live model: %s) in %.0f s",
                model_id,
                result["passed"],
                result["total"],
                f"{live_result['passed']}/{live_result['total']}" if live_result else "none",
                timings["conversations_s"],
            )

        api.progress(model_id, "upload")
        clock = time.monotonic()
        api.put_artifact(model_id, model, fingerprint)
        timings["upload_s"] = round(time.monotonic() - clock, 1)
        timings["total_s"] = round(time.monotonic() - started, 1)
        metrics.update(
            {
                "live": live_metrics,
                "data": facts,
                "config": _shown(settings.config),
                "data_subset": settings.data_subset,
                "model_bytes": model.stat().st_size,
                "attempt": attempt,
                "timings": timings,
            }
        )
        body = {
            "status": "candidate",
            "metrics": metrics,
            "fingerprint": fingerprint,
            "data_hash": facts["hash"],
        }
        api.post_result(model_id, body)
        log.info("model %s: candidate uploaded and reported (%.0f s)", model_id, timings["total_s"])
        return body


def train_candidate(model_id: int | str, settings: Settings) -> dict[str, Any]:
    """The job with its retries; the result body posted last (candidate or failed)."""
    api = ApiClient(settings)
    try:
        error = ""
        for attempt in range(1, settings.attempts + 1):
            log.info("model %s: attempt %d/%d", model_id, attempt, settings.attempts)
            try:
                return run_once(model_id, settings, api, attempt)
            except Abandoned as exc:
                log.warning("model %s: %s", model_id, exc)
                return {"status": "abandoned", "error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported
                error = safe_message(exc)
                log.warning("model %s: attempt %d failed: %s", model_id, attempt, error)
            if attempt < settings.attempts:
                time.sleep(settings.retry_delay * 2 ** (attempt - 1))
        body: dict[str, Any] = {
            "status": "failed",
            "metrics": {"attempts": settings.attempts},
            "fingerprint": None,
            "error": error,
        }
        api.post_result(model_id, body)
        log.error("model %s: failed after %d attempts", model_id, settings.attempts)
        return body
    finally:
        api.close()
