"""The registry for staff (`/api/v1/staff/models…`), the trainer's callbacks and the model
server Rasa pulls from (`/api/v1/models/…`, service token).

Rasa's `models:` endpoint (bot/endpoints.yml) sends `Authorization: Service <SERVICE_TOKEN>`
as a header (EndpointConfig `headers`), and `If-None-Match: <the ETag it holds>`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from app.core.database import DbSession
from app.core.errors import AppError
from app.core.limits import LARGE_BODY_ROUTES
from app.core.params import RowId
from app.core.security import CallerDep
from app.modelhub import artifact, checks, service
from app.modelhub.config import candidates_dir, settings
from app.modelhub.models import NluModel
from app.modelhub.schemas import (
    ArtifactOut,
    ChecksRead,
    ModelList,
    ModelRead,
    ProgressIn,
    ProgressOut,
    PromoteIn,
    ResultIn,
    ResultOut,
    TrainOut,
)
from app.staff import roles
from app.staff.auth import StaffDep

staff_router = APIRouter(prefix="/staff/models", tags=["staff: models"])
router = APIRouter(prefix="/models", tags=["models"])

SERVICE_ONLY = "此接口仅供训练任务和智能客服调用（服务令牌）。"
NO_LIVE = "还没有现网模型。"
LIVE_PATH_HEADER = "X-Live-Model-Path"
LIVE_FINGERPRINT_HEADER = "X-Live-Model-Fingerprint"
CHUNK = 1024 * 1024

_ARTIFACT_PATH = re.compile(r"^/api/v1/models/\d+/artifact$")
LARGE_BODY_ROUTES.append(
    (lambda path: bool(_ARTIFACT_PATH.match(path)), lambda: settings.model_max_upload_bytes)
)


def _service(caller: CallerDep) -> None:
    if not caller.is_service:
        raise AppError(403, "service_only", SERVICE_ONLY)


def model_read(row: NluModel, live: NluModel | None) -> ModelRead:
    """A registry row with its figures and, for a candidate, its checks against `live`."""
    found = checks.scores(row.metrics)
    checked: ChecksRead | None = None
    if row.status == "candidate":
        v = service.verdict(row, live)
        checked = ChecksRead(
            passed=v.passed,
            refusals=list(v.refusals),
            notes=list(v.notes),
            intent_drops={k: round(d, 4) for k, d in v.intent_drops.items()},
            regressed_cases=list(v.regressed_cases),
        )
    return ModelRead(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        status_label=row.status_label,
        data_hash=row.data_hash,
        started_by=row.started_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
        metrics=row.metrics,
        macro_f1=found.macro_f1,
        entity_f1=found.entity_f1,
        conversations_passed=found.conversations_passed,
        conversations_total=found.conversations_total,
        refusal=("\n".join(checked.refusals) or None) if checked else row.refusal,
        fingerprint=row.fingerprint,
        promoted_at=row.promoted_at,
        promoted_by=row.promoted_by,
        override_reason=row.override_reason,
        error=row.error,
        checks=checked,
        stage=row.stage if row.status == "training" else None,
        stage_label=row.stage_label,
        heartbeat_at=row.heartbeat_at if row.status == "training" else None,
    )


# -- staff ----------------------------------------------------------------------------------


@staff_router.get("", response_model=ModelList)
def list_models(db: DbSession, user: StaffDep) -> ModelList:
    """Every model, newest first, with its status, data hash, metrics and checks."""
    roles.require(user, "models.read")
    live = service.live_model(db)
    return ModelList(
        models=[model_read(r, live) for r in service.list_models(db)],
        live=live.id if live else None,
    )


@staff_router.post("/train", response_model=TrainOut, status_code=202)
def train(db: DbSession, user: StaffDep) -> TrainOut:
    """Queue the training of a candidate (nlu_data/ plus the annotated examples)."""
    row = service.start_training(db, user=user)
    db.commit()
    return TrainOut(id=row.id, status="training")


@staff_router.post("/{model_id}/promote", response_model=ModelRead)
def promote(
    model_id: RowId, db: DbSession, user: StaffDep, data: PromoteIn | None = None
) -> ModelRead:
    """Make a model live (a retired one: the rollback); a refused candidate answers 409 with
    the Chinese reasons unless an admin writes a `reason`."""
    row = service.promote(
        db,
        model_id=model_id,
        user=user,
        reason=data.reason if data else None,
        expected_live=data.expected_live if data else None,
    )
    return model_read(row, row)


# -- the trainer ----------------------------------------------------------------------------


@router.get("/{model_id}/training-data", response_class=PlainTextResponse)
def training_data(model_id: RowId, db: DbSession, caller: CallerDep) -> PlainTextResponse:
    """The annotated examples as Rasa NLU YAML (`nlu: []` when there are none yet); headers
    name the live model's fingerprint and path."""
    _service(caller)
    service.get_model(db, model_id)
    text, count = service.training_yaml(db)
    headers = {"X-Examples": str(count), "Cache-Control": "no-store"}
    live = service.live_model(db)
    if live is not None and live.fingerprint:
        headers[LIVE_FINGERPRINT_HEADER] = live.fingerprint
        if live.artifact:
            headers[LIVE_PATH_HEADER] = live.artifact
    return PlainTextResponse(text, media_type="application/x-yaml", headers=headers)


@router.put("/{model_id}/artifact", response_model=ArtifactOut)
async def upload_artifact(
    model_id: RowId,
    request: Request,
    db: DbSession,
    caller: CallerDep,
    x_model_fingerprint: Annotated[str | None, Header(max_length=128)] = None,
) -> ArtifactOut:
    """The candidate's `.tar.gz`, streamed to MODEL_CANDIDATES_DIR (checked: a Rasa model)."""
    _service(caller)
    await run_in_threadpool(service.training_row, db, model_id)
    folder = candidates_dir()
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f"upload-{model_id}-{secrets.token_hex(6)}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with part.open("wb") as handle:
            async for chunk in request.stream():
                size += len(chunk)
                if size > settings.model_max_upload_bytes:
                    raise AppError(413, "too_large", "模型文件太大了。")
                digest.update(chunk)
                handle.write(chunk)
        if size == 0:
            raise AppError(422, "empty_model", "没有收到模型文件。")
        row = await run_in_threadpool(
            service.accept_artifact,
            db,
            model_id=model_id,
            upload=part,
            sha256=digest.hexdigest(),
            claimed=x_model_fingerprint,
        )
    finally:
        part.unlink(missing_ok=True)
    assert row.fingerprint is not None
    return ArtifactOut(
        id=row.id, fingerprint=row.fingerprint, bytes=size, sha256=digest.hexdigest()
    )


@router.post("/{model_id}/progress", response_model=ProgressOut)
def training_progress(
    model_id: RowId, data: ProgressIn, db: DbSession, caller: CallerDep
) -> ProgressOut:
    """The step the trainer has begun (its heartbeat); 409 once the model left `training`."""
    _service(caller)
    row = service.record_progress(db, model_id=model_id, stage=data.stage)
    return ProgressOut(id=row.id, stage=data.stage, stage_label=row.stage_label or "")


@router.post("/{model_id}/result", response_model=ResultOut)
def training_result(model_id: RowId, data: ResultIn, db: DbSession, caller: CallerDep) -> ResultOut:
    """`candidate` (after the artifact) with its metrics, or `failed` with a short error."""
    _service(caller)
    row = service.record_result(
        db,
        model_id=model_id,
        status=data.status,
        metrics=data.metrics,
        fingerprint=data.fingerprint,
        error=data.error,
        data_hash=data.data_hash,
    )
    return ResultOut(id=row.id, status=row.status, refusal=row.refusal)  # type: ignore[arg-type]


# -- the model server -----------------------------------------------------------------------


def _etag_matches(header: str | None, fingerprint: str) -> bool:
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if tag in (fingerprint, "*"):
            return True
    return False


@router.get("/live", response_model=None)
def live_model(
    db: DbSession,
    caller: CallerDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The live model's `.tar.gz` with `ETag: "<fingerprint>"`; 304 when Rasa already has it,
    404 when there is none (Rasa keeps what it has and asks again later)."""
    _service(caller)
    live = service.live_model(db)
    if live is None or not live.fingerprint or not live.artifact:
        raise AppError(404, "no_live_model", NO_LIVE)
    etag = f'"{live.fingerprint}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _etag_matches(if_none_match, live.fingerprint):
        return Response(status_code=304, headers=headers)
    path = artifact.stored_path(live.id)
    if not path.is_file():
        path = type(path)(live.artifact)
    if not path.is_file():
        raise AppError(404, "no_live_model", "现网模型的文件不见了。")
    return FileResponse(
        path, media_type="application/gzip", filename="model.tar.gz", headers=headers
    )
