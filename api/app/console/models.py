"""Console screen 模型 (maintainers and admins): the model registry with its checks, 训练新模型,
上线, 回滚 and an admin's override with a written reason. While a model trains, the table
refreshes itself every few seconds (htmx)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import attempt, html_errors, redirect, render
from app.core.database import DbSession, utcnow
from app.modelhub import checks, service
from app.modelhub.config import settings
from app.modelhub.models import NluModel
from app.staff import roles
from app.staff.auth import ConsoleUser, check_form_csrf

router = APIRouter(prefix="/console", include_in_schema=False)
REFRESH_SECONDS = 3


def intent_label(name: str) -> str:
    """`ask_materials（问要带什么材料）`: the contract's Chinese label when there is one."""
    try:
        from app.nlu.intents import INTENT_LABELS
    except ImportError:  # pragma: no cover - the inbox ships in the same release
        return name
    label = INTENT_LABELS.get(name)
    return f"{name}（{label}）" if label else name


def _elapsed(since: datetime | None, until: datetime | None = None) -> str:
    if since is None:
        return ""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    end = until or utcnow()
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    seconds = max(int((end - since).total_seconds()), 0)
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} 分 {seconds:02d} 秒" if minutes else f"{seconds} 秒"


def _row(model: NluModel, live: NluModel | None) -> dict[str, Any]:
    found = checks.scores(model.metrics)
    verdict = service.verdict(model, live) if model.status == "candidate" else None
    return {
        "m": model,
        "scores": found,
        "verdict": verdict,
        "drops": [
            (name, intent_label(name), drop)
            for name, drop in (verdict.intent_drops.items() if verdict else [])
        ],
        "elapsed": _elapsed(
            model.created_at, model.finished_at if model.status != "training" else None
        ),
    }


def _page(
    request: Request, db: DbSession, user: Any, error: str | None = None, status: int = 200
) -> HTMLResponse:
    live = service.live_model(db)
    models = service.list_models(db)
    training = any(m.status == "training" for m in models)
    return render(
        request,
        "models.html",
        user,
        status,
        error,
        rows=[_row(m, live) for m in models],
        live=live,
        live_row=_row(live, live) if live else None,
        previous=service.previous_live(db),
        training=training,
        refresh=REFRESH_SECONDS,
        max_macro=settings.model_max_macro_f1_drop,
        max_intent=settings.model_max_intent_f1_drop,
    )


@router.get("/models", response_class=HTMLResponse)
@html_errors
def models_page(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """The registry: live model, candidates with their checks, history."""
    roles.require(user, "models.read")
    return _page(request, db, user)


@router.post("/models/train")
def models_train(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """训练新模型: queue the training job."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "models.train")
    created: list[NluModel] = []
    error = attempt(db, lambda: created.append(service.start_training(db, user=user)))
    if error:
        return _page(request, db, user, error, 409)
    db.commit()
    return redirect("/console/models", f"模型 #{created[0].id} 已开始训练，完成后会出现在下表。")


@router.post("/models/{model_id}/promote")
def models_promote(
    model_id: int,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    expected_live: Annotated[int | None, Form(ge=0)] = None,
) -> Response:
    """上线 / 回滚 / 强制上线 (admin, with a reason); `expected_live` is the live model the page
    showed, so a colleague's promotion in between is not replaced unseen."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "models.promote")
    was = service.get_model(db, model_id).status
    error = attempt(
        db,
        lambda: service.promote(
            db, model_id=model_id, user=user, reason=reason, expected_live=expected_live
        ),
    )
    if error:
        return _page(request, db, user, error, 409)
    db.commit()
    done = "已回滚到" if was == "retired" else "已上线"
    return redirect(
        "/console/models",
        f"{done}模型 #{model_id}：各个 Rasa 会在一分钟内换用它，无需重启，进行中的对话不受影响。",
    )
