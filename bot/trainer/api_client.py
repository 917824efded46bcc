"""The trainer's client of the api's model endpoints (docs/maintainers.md, "Models"), all with
the service token: the training data, the live model, progress, the artifact upload and the
result."""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from trainer.config import Settings
from trainer.errors import Abandoned, TrainerError

log = logging.getLogger("trainer")
CHUNK = 1024 * 1024
# Optional headers of the training-data answer: where the live model is on a shared disk,
# and its fingerprint (the model server's ETag). Without them the trainer pulls
# GET /api/v1/models/live.
LIVE_PATH_HEADER = "X-Live-Model-Path"
LIVE_FINGERPRINT_HEADER = "X-Live-Model-Fingerprint"


@dataclass
class TrainingData:
    """The annotated examples (Rasa NLU YAML) and what the api says about the live model."""

    yaml_text: str
    live_path: Path | None
    live_fingerprint: str | None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(path: Path) -> str:
    """A Rasa model's fingerprint as the registry and Rasa's /status name it: the `model_id`
    of the archive's metadata.json (the file's SHA-256 when there is none)."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for name in ("metadata.json", "./metadata.json", "/metadata.json"):
                try:
                    handle = archive.extractfile(archive.getmember(name))
                except KeyError:
                    continue
                if handle is not None:
                    model_id = json.loads(handle.read().decode("utf-8")).get("model_id")
                    if isinstance(model_id, str) and model_id:
                        return model_id
                break
    except (OSError, tarfile.TarError, EOFError, ValueError):
        pass
    return file_sha256(path)


class ApiClient:
    """Calls the api with `Authorization: Service <SERVICE_TOKEN>`."""

    def __init__(self, settings: Settings) -> None:
        """A client for `settings.api_url`."""
        self.base = f"{settings.api_url}/api/v1/models"
        self.client = httpx.Client(
            headers={"Authorization": f"Service {settings.service_token}"},
            timeout=httpx.Timeout(settings.http_timeout, connect=10.0),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 400:
            # The body is not quoted: the message goes into the model's record and the log.
            raise TrainerError(f"{what}失败（api 返回 HTTP {response.status_code}）")

    def _call(self, method: str, url: str, what: str, **kwargs: object) -> httpx.Response:
        try:
            response = self.client.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise TrainerError(f"{what}失败（连不上 api：{type(exc).__name__}）") from None
        self._check(response, what)
        return response

    def training_data(self, model_id: int | str) -> TrainingData:
        """GET …/{id}/training-data: the annotated examples as Rasa NLU YAML."""
        response = self._call("GET", f"{self.base}/{model_id}/training-data", "获取训练数据")
        raw_path = response.headers.get(LIVE_PATH_HEADER)
        return TrainingData(
            yaml_text=response.text,
            live_path=Path(raw_path) if raw_path else None,
            live_fingerprint=response.headers.get(LIVE_FINGERPRINT_HEADER) or None,
        )

    def download_live(self, target: Path) -> str | None:
        """GET …/live into `target`; its ETag (fingerprint), or None when there is no live
        model (404)."""
        what = "下载当前模型"
        try:
            with self.client.stream("GET", f"{self.base}/live") as response:
                if response.status_code == 404:
                    return None
                self._check(response, what)
                with target.open("wb") as handle:
                    for block in response.iter_bytes(CHUNK):
                        handle.write(block)
                etag = response.headers.get("ETag") or ""
        except httpx.HTTPError as exc:
            raise TrainerError(f"{what}失败（连不上 api：{type(exc).__name__}）") from None
        return etag.removeprefix("W/").strip('"') or model_fingerprint(target)

    def put_artifact(self, model_id: int | str, path: Path, fingerprint: str) -> None:
        """PUT …/{id}/artifact: the .tar.gz, streamed from disk."""

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                yield from iter(lambda: handle.read(CHUNK), b"")

        self._call(
            "PUT",
            f"{self.base}/{model_id}/artifact",
            "上传模型",
            content=chunks(),
            headers={
                "Content-Type": "application/gzip",
                "Content-Length": str(path.stat().st_size),
                "X-Model-Fingerprint": fingerprint,
            },
        )

    def progress(self, model_id: int | str, stage: str) -> None:
        """POST …/{id}/progress {stage}: the step begun, the job's heartbeat. A 409 (the model
        left `training`) stops the job; other failures are logged and the job goes on."""
        try:
            response = self.client.post(f"{self.base}/{model_id}/progress", json={"stage": stage})
        except httpx.HTTPError as exc:
            log.warning("model %s: progress not reported (%s)", model_id, type(exc).__name__)
            return
        if response.status_code == 409:
            raise Abandoned(f"模型 #{model_id} 已不在训练中，任务停止")
        if response.status_code >= 400:
            log.warning("model %s: progress not reported (HTTP %s)", model_id, response.status_code)

    def post_result(self, model_id: int | str, body: dict[str, object]) -> None:
        """POST …/{id}/result: {status: candidate|failed, metrics, fingerprint, error?}."""
        self._call("POST", f"{self.base}/{model_id}/result", "报告训练结果", json=body)
