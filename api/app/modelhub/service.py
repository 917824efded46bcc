"""The model registry: register, train, record a training's result, promote and roll back.

A model is `training` (its job queued), then `candidate` (or `failed`); promoting a candidate
makes it `live` and the previous live model `retired`; promoting a retired model again is the
rollback. Promotion of a candidate passes the checks of app.modelhub.checks, or an admin
overrides them with a written reason. Every promotion is audited.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.config import REPO_DIR
from app.core.config import settings as core_settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.modelhub import artifact, checks
from app.modelhub.config import settings
from app.modelhub.models import NluModel
from app.staff import roles
from app.staff.models import StaffUser

log = logging.getLogger("app.modelhub")

ENTITY_TYPE = "nlu_model"
NOT_FOUND = "没有找到这个模型。"
EMPTY_TRAINING_DATA = 'version: "3.1"\nnlu: []\n'
MIN_REASON_CHARS = 4
ACTION_LABELS = {
    "model.train": "开始训练模型",
    "model.promote": "模型上线",
    "model.rollback": "模型回滚",
    "model.override": "强制上线模型（管理员）",
    "model.register": "登记启动模型",
}
audit.ACTION_LABELS.update(ACTION_LABELS)


def actor_of(user: StaffUser) -> str:
    """How the registry and the audit trail name a member of staff."""
    return f"staff:{user.username}"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# -- reading --------------------------------------------------------------------------------


def get_model(db: Session, model_id: int) -> NluModel:
    """One model, or a Chinese 404."""
    row = db.get(NluModel, model_id)
    if row is None:
        raise AppError(404, "model_not_found", NOT_FOUND)
    return row


def live_model(db: Session) -> NluModel | None:
    """The model Rasa should serve now (at most one)."""
    return db.scalars(select(NluModel).where(NluModel.status == "live")).first()


def list_models(db: Session, limit: int = 200) -> list[NluModel]:
    """The registry, newest first."""
    return list(db.scalars(select(NluModel).order_by(NluModel.id.desc()).limit(limit)))


def by_fingerprint(db: Session, fingerprint: str) -> NluModel | None:
    """The newest usable row with this fingerprint (failed ones do not count)."""
    return db.scalars(
        select(NluModel)
        .where(NluModel.fingerprint == fingerprint, NluModel.status != "failed")
        .order_by(NluModel.id.desc())
    ).first()


def baseline_metrics(candidate: NluModel, live: NluModel | None) -> dict[str, Any] | None:
    """What the candidate is compared with: the live model as the training job measured it in
    the same run (`metrics.baseline`, same held-out set and suite) when it names the live
    model's fingerprint (or none), else the metrics recorded for the live model."""
    if live is None:
        return None
    metrics = candidate.metrics or {}
    baseline = metrics.get("baseline") or metrics.get("live")
    if isinstance(baseline, dict):
        named = baseline.get("fingerprint")
        if not named or named == live.fingerprint:
            return baseline
    return live.metrics


def verdict(candidate: NluModel, live: NluModel | None) -> checks.Verdict:
    """The checks of `candidate` against the live model."""
    return checks.judge(
        candidate.metrics, baseline_metrics(candidate, live), has_live=live is not None
    )


# -- registering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What `register_live` did: `live` (new live model), `promoted` (a known row made live),
    `unchanged` (already live or already known) or `candidate` (another model is live)."""

    outcome: str
    model: NluModel


def register(
    db: Session,
    *,
    path: Path,
    status: str,
    started_by: str,
    data_hash: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> NluModel:
    """Add a model file to the registry (copied into MODEL_CANDIDATES_DIR)."""
    fingerprint = artifact.fingerprint_of(path)
    now = utcnow()
    row = NluModel(
        status=status,
        started_by=started_by[:64],
        data_hash=data_hash or artifact.data_hash_of(path),
        fingerprint=fingerprint,
        metrics=metrics,
        created_at=now,
        finished_at=now,
    )
    db.add(row)
    db.flush()
    row.artifact = str(artifact.copy_in(path, row.id))
    if status == "live":
        row.promoted_at, row.promoted_by = now, started_by[:64]
    db.flush()
    return row


def register_live(
    db: Session, *, path: Path, actor: str, metrics: dict[str, Any] | None = None
) -> Registration:
    """The start-up registration: the model `make train` built or found becomes live when the
    registry has no live model. Idempotent: a fingerprint already known changes nothing."""
    fingerprint = artifact.fingerprint_of(path)
    live = live_model(db)
    if live is not None and live.fingerprint == fingerprint:
        return Registration("unchanged", live)
    known = by_fingerprint(db, fingerprint)
    if live is None:
        if known is not None and known.status in ("candidate", "retired"):
            _make_live(db, known, actor, None)
            audit.record(
                db=db,
                actor=actor,
                action="model.register",
                entity_type=ENTITY_TYPE,
                entity_id=known.id,
                after={"status": "live", "fingerprint": fingerprint},
            )
            return Registration("promoted", known)
        row = register(db, path=path, status="live", started_by=actor, metrics=metrics)
        audit.record(
            db=db,
            actor=actor,
            action="model.register",
            entity_type=ENTITY_TYPE,
            entity_id=row.id,
            after={"status": "live", "fingerprint": fingerprint},
        )
        return Registration("live", row)
    if known is not None:
        return Registration("unchanged", known)
    row = register(db, path=path, status="candidate", started_by=actor, metrics=metrics)
    row.refusal = verdict(row, live).refusal_text
    db.flush()
    return Registration("candidate", row)


# -- training -------------------------------------------------------------------------------


def training_yaml(db: Session) -> tuple[str, int]:
    """The annotated examples (Rasa NLU YAML) and how many, from the NLU inbox."""
    try:
        from app.nlu.export import training_yaml as nlu_training_yaml
    except ImportError:  # pragma: no cover - the inbox is part of the same release
        return EMPTY_TRAINING_DATA, 0
    text, count = nlu_training_yaml(db)
    return text, count


def _training_files() -> Iterable[Path]:
    nlu_dir = Path(getattr(core_settings, "nlu_data_dir", REPO_DIR / "nlu_data"))
    if not nlu_dir.is_dir():
        return []
    return sorted(
        p
        for p in nlu_dir.rglob("*")
        if p.is_file()
        and p.suffix in (".yml", ".yaml")
        and "test" not in p.relative_to(nlu_dir).parts[:1]
    )


def data_hash(db: Session) -> str:
    """Hash of what a training now would learn from: the training files of nlu_data/ (when
    the api has them) and the annotated examples."""
    digest = hashlib.sha256()
    for path in _training_files():
        digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    digest.update(training_yaml(db)[0].encode())
    return digest.hexdigest()[:16]


NOT_STARTED = "训练任务没有开始：训练进程（trainer）没有运行，或连不上任务队列。请检查后重新训练。"
STALLED = "训练中断：训练进程已经 {minutes} 分钟没有报告进度（被停止或崩溃）。请重新训练。"
TIMED_OUT = "训练超时：训练任务没有按时报告结果。"


def _stale_reason(row: NluModel, now: datetime) -> str | None:
    """Why a `training` row is taken as lost now, or None while it is alive."""
    created = _aware(row.created_at)
    if created is not None and now - created > timedelta(
        seconds=settings.model_training_timeout_seconds
    ):
        return TIMED_OUT
    stall = timedelta(seconds=settings.model_training_stall_seconds)
    beat = _aware(row.heartbeat_at)
    if beat is None:
        return NOT_STARTED if created is not None and now - created > stall else None
    if now - beat > stall:
        return STALLED.format(minutes=max(1, int(stall.total_seconds() // 60)))
    return None


def expire_stale_trainings(db: Session) -> None:
    """Fail the trainings whose trainer is gone (see `_stale_reason`)."""
    now = utcnow()
    for row in db.scalars(select(NluModel).where(NluModel.status == "training")):
        reason = _stale_reason(row, now)
        if reason is not None:
            row.status, row.finished_at, row.error = "failed", now, reason
            log.warning("model %s: training taken as lost (%s)", row.id, row.stage or "not started")
    db.flush()


def record_progress(db: Session, *, model_id: int, stage: str) -> NluModel:
    """The trainer's heartbeat: the step it is on (TRAINING_STAGES)."""
    row = training_row(db, model_id)
    row.stage, row.heartbeat_at = stage, utcnow()
    db.flush()
    return row


def training_in_progress(db: Session) -> NluModel | None:
    """The model being trained now, if any (stale ones are failed first)."""
    expire_stale_trainings(db)
    return db.scalars(select(NluModel).where(NluModel.status == "training")).first()


_ENQUEUE_KEY = "modelhub.enqueue"


def _after_commit(session: Session) -> None:
    from app.modelhub.queue import enqueue_training

    for model_id in sorted(session.info.pop(_ENQUEUE_KEY, set())):
        try:
            enqueue_training(model_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the row, shown on the page
            log.warning("could not queue training of model %s (%s)", model_id, type(exc).__name__)
            _record_enqueue_failure(model_id)


def _record_enqueue_failure(model_id: int) -> None:
    from app.jobs.queue import job_session

    with job_session() as db:
        row = db.get(NluModel, model_id)
        if row is not None and row.status == "training":
            row.status, row.finished_at = "failed", utcnow()
            row.error = "训练任务没能放进任务队列，请稍后重试。"
            db.commit()


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_ENQUEUE_KEY, None)


def _enqueue_after_commit(db: Session, model_id: int) -> None:
    if not db.info.get("modelhub.hooks"):
        event.listen(db, "after_commit", _after_commit)
        event.listen(db, "after_transaction_end", _after_transaction_end)
        db.info["modelhub.hooks"] = True
    db.info.setdefault(_ENQUEUE_KEY, set()).add(model_id)


def start_training(db: Session, *, user: StaffUser) -> NluModel:
    """A new `training` row; its job `trainer.train_candidate(id)` is queued after the commit.
    One training at a time (409 while another runs)."""
    roles.require(user, "models.train")
    running = training_in_progress(db)
    if running is not None:
        raise AppError(409, "training_running", f"模型 #{running.id} 正在训练，请等它完成后再试。")
    row = NluModel(status="training", started_by=actor_of(user), data_hash=data_hash(db))
    db.add(row)
    db.flush()
    audit.record(
        db=db,
        actor=actor_of(user),
        action="model.train",
        entity_type=ENTITY_TYPE,
        entity_id=row.id,
        after={"status": "training", "data_hash": row.data_hash},
    )
    _enqueue_after_commit(db, row.id)
    return row


def training_row(db: Session, model_id: int) -> NluModel:
    row = get_model(db, model_id)
    if row.status != "training":
        raise AppError(
            409,
            "not_training",
            f"模型 #{row.id} 不在训练中（{row.status_label}），不能再报告结果。",
        )
    return row


def accept_artifact(
    db: Session, *, model_id: int, upload: Path, sha256: str, claimed: str | None
) -> NluModel:
    """A complete upload of model `model_id` (a training one): check it is a Rasa model (and
    the fingerprint the trainer claims, its model id or file SHA-256), move it into place."""
    row = training_row(db, model_id)
    try:
        fingerprint = artifact.fingerprint_of(upload)
        if claimed and claimed not in (fingerprint, sha256):
            raise AppError(409, "fingerprint_mismatch", "上传的模型与报告的指纹不符。")
    except AppError:
        upload.unlink(missing_ok=True)
        raise
    target = artifact.stored_path(row.id)
    upload.replace(target)
    row.artifact, row.fingerprint = str(target), fingerprint
    db.flush()
    return row


def record_result(
    db: Session,
    *,
    model_id: int,
    status: str,
    metrics: dict[str, Any] | None,
    fingerprint: str | None,
    error: str | None,
    data_hash: str | None = None,
) -> NluModel:
    """The trainer's report: `candidate` (artifact uploaded before, metrics) or `failed`."""
    row = training_row(db, model_id)
    row.finished_at = utcnow()
    row.metrics = metrics
    if data_hash:
        row.data_hash = data_hash[:64]
    if status == "failed":
        row.status, row.error = "failed", (error or "训练失败。")[:2000]
        db.flush()
        return row
    if not row.artifact or not Path(row.artifact).is_file():
        raise AppError(409, "no_artifact", "还没有收到这个模型的文件：请先上传模型再报告结果。")
    if fingerprint and row.fingerprint and fingerprint != row.fingerprint:
        sha = hashlib.sha256(Path(row.artifact).read_bytes()).hexdigest()
        if fingerprint != sha:
            raise AppError(409, "fingerprint_mismatch", "报告的指纹与上传的模型不符。")
    row.status = "candidate"
    row.refusal = verdict(row, live_model(db)).refusal_text
    db.flush()
    return row


# -- promotion ------------------------------------------------------------------------------


PROMOTION_CONFLICT = "另一位同事刚刚上线了别的模型，请刷新后重试。"


def _make_live(
    db: Session, row: NluModel, actor: str, previous: NluModel | None
) -> NluModel | None:
    """Retire `previous` (the live model the caller judged against) and make `row` live.

    The retirement is conditional (`WHERE status = 'live'`), so it is the check and the act at
    once: when another promotion retired `previous` first (committed while this one was being
    judged), nothing is updated and the answer is 409 — re-reading the live model here instead
    would retire the colleague's model and let both promotions "win"."""
    if previous is not None and previous.id != row.id:
        retired = db.execute(
            update(NluModel)
            .where(NluModel.id == previous.id, NluModel.status == "live")
            .values(status="retired")
            .execution_options(synchronize_session="fetch")
        )
        if retired.rowcount != 1:  # type: ignore[attr-defined]
            raise AppError(409, "promotion_conflict", PROMOTION_CONFLICT)
    row.status, row.promoted_at, row.promoted_by = "live", utcnow(), actor[:64]
    row.refusal = None
    try:
        # The index allows one live row: a promotion racing from "no live model" fails here.
        db.flush()
    except IntegrityError:
        raise AppError(409, "promotion_conflict", PROMOTION_CONFLICT) from None
    return previous


def _refresh_refusals(db: Session) -> None:
    live = live_model(db)
    for row in db.scalars(select(NluModel).where(NluModel.status == "candidate")):
        row.refusal = verdict(row, live).refusal_text
    db.flush()


def promote(
    db: Session,
    *,
    model_id: int,
    user: StaffUser,
    reason: str | None = None,
    expected_live: int | None = None,
) -> NluModel:
    """Make a candidate (checks passed, or an admin's written override) or a retired model
    (rollback) the live one; the previous live model is retired. Audited. `expected_live` is
    the live model's id as the maintainer saw it (0: none): if another went live meanwhile,
    409 `promotion_conflict` (the same answer as when both write at the same moment)."""
    roles.require(user, "models.promote")
    row = get_model(db, model_id)
    reason = (reason or "").strip()
    if row.status == "live":
        raise AppError(409, "already_live", f"模型 #{row.id} 已经是现网模型。")
    if row.status not in ("candidate", "retired"):
        raise AppError(
            409,
            "not_promotable",
            f"模型 #{row.id} 是{row.status_label}状态，只能上线候选或已退役的模型。",
        )
    if not row.artifact or not Path(row.artifact).is_file():
        raise AppError(409, "artifact_missing", f"模型 #{row.id} 的文件不见了，不能上线。")
    live = live_model(db)
    if expected_live is not None and (live.id if live else 0) != expected_live:
        raise AppError(409, "promotion_conflict", PROMOTION_CONFLICT)
    action = "model.rollback" if row.status == "retired" else "model.promote"
    overridden = False
    if row.status == "candidate":
        result = verdict(row, live)
        if not result.passed:
            row.refusal = result.refusal_text
            if not reason:
                raise AppError(
                    409,
                    "checks_failed",
                    "不能上线：" + "；".join(result.refusals),
                    {"refusals": list(result.refusals)},
                )
            if not roles.can(user, "models.override"):
                raise AppError(
                    403, "override_forbidden", "检查未通过的模型只有管理员可以强制上线。"
                )
            if len(reason) < MIN_REASON_CHARS:
                raise AppError(
                    422, "reason_too_short", f"强制上线请写明理由（至少 {MIN_REASON_CHARS} 个字）。"
                )
            overridden, action = True, "model.override"
    before = {"status": row.status, "live": live.id if live else None}
    previous = _make_live(db, row, actor_of(user), live)
    if overridden:
        row.override_reason = reason[:2000]
    audit.record(
        db=db,
        actor=actor_of(user),
        action=action,
        entity_type=ENTITY_TYPE,
        entity_id=row.id,
        before=before,
        after={
            "status": "live",
            "fingerprint": row.fingerprint,
            "retired": previous.id if previous else None,
            **({"reason": row.override_reason} if overridden else {}),
        },
    )
    _refresh_refusals(db)
    return row


def previous_live(db: Session) -> NluModel | None:
    """The model to roll back to: the retired one promoted most recently."""
    return db.scalars(
        select(NluModel)
        .where(NluModel.status == "retired", NluModel.promoted_at.is_not(None))
        .order_by(NluModel.promoted_at.desc(), NluModel.id.desc())
    ).first()
