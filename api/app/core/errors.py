"""Errors as JSON `{"code", "message"}` with a Chinese message for residents and staff."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.database import database_unavailable

log = logging.getLogger("app.errors")

STATUS_MESSAGES = {
    400: ("bad_request", "请求有误，请检查后重试。"),
    401: ("unauthorized", "请先登录。"),
    403: ("forbidden", "您没有权限进行此操作。"),
    404: ("not_found", "没有找到您要的内容。"),
    405: ("method_not_allowed", "不支持这种请求方式。"),
    409: ("conflict", "数据已被他人修改，请刷新后重试。"),
    413: ("too_large", "提交的内容太长了，请精简后再试。"),
    415: ("unsupported_media_type", "请以 JSON 格式提交。"),
    422: ("invalid_input", "填写的信息有误，请检查后重试。"),
    429: ("rate_limited", "操作太频繁了，请稍等一分钟再试。"),
    500: ("server_error", "系统开小差了，请稍后再试。"),
    503: ("unavailable", "服务暂时不可用，请稍后再试。"),
}

# Chinese names of request fields, for validation messages.
FIELD_LABELS: dict[str, str] = {
    "address": "地址",
    "id_number": "身份证号",
    "person_name": "姓名",
    "phone": "手机号",
    "project_code": "项目编号",
    "description": "情况描述",
    "consent": "同意授权",
    "channel": "来源渠道",
    "petition_number": "信访编号",
    "sender_id": "会话标识",
}


class AppError(Exception):
    """An error with a stable code and a Chinese message, raised by services and views."""

    def __init__(
        self, status_code: int, code: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.extra = extra or {}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of every error answer."""
    return {"code": code, "message": message, **extra}


def validation_message(
    exc: RequestValidationError | ValidationError,
) -> tuple[str, list[dict[str, Any]]]:
    """The Chinese message of a request's (or a schema's) validation errors, and per field."""
    details: list[dict[str, Any]] = []
    parts: list[str] = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        field = loc[-1] if loc else ""
        label = FIELD_LABELS.get(field, field)
        etype = err.get("type", "")
        ctx = err.get("ctx") or {}
        if etype == "extra_forbidden":
            text = f"不认识的字段：{field}"
        elif etype == "missing":
            text = f"缺少{label}"
        elif etype == "json_invalid":
            text = "内容不是有效的 JSON"
        elif etype.startswith("string_too_long"):
            text = f"{label}太长了（最多 {ctx.get('max_length')} 个字）"
        elif etype.startswith("string_too_short"):
            text = f"{label}不能为空"
        elif etype == "value_error":
            # Our validators raise ValueError with a Chinese sentence already.
            text = str(ctx.get("error") or err.get("msg", "")).removeprefix("Value error, ")
        else:
            text = f"{label}格式不对" if label else "格式不对"
        parts.append(text)
        # Never echo the submitted value back: it may be an ID number or a phone.
        details.append({"field": field, "type": etype, "message": text})
    message = "；".join(dict.fromkeys(parts)) or STATUS_MESSAGES[422][1]
    return message, details


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into the `{code, message}` shape."""

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        # A 429 or 503 that says when to come back says it in the header too (clients and
        # proxies read Retry-After, not our body).
        retry = exc.extra.get("retry_after")
        headers = {"Retry-After": str(int(retry))} if isinstance(retry, int | float) else None
        return JSONResponse(
            error_body(exc.code, exc.message, **exc.extra),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, details = validation_message(exc)
        return JSONResponse(error_body("invalid_input", message, errors=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, default = STATUS_MESSAGES.get(exc.status_code, ("error", "请求失败。"))
        message = exc.detail if isinstance(exc.detail, str) and _is_chinese(exc.detail) else default
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(SATimeoutError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            raise exc  # a wrong statement: the edge logs it once and answers the 500
        return database_unavailable_response(request.scope, exc)

    # Errors no handler takes are logged and answered by app.core.edge.Edge (not re-raised, so
    # the server prints no traceback quoting what the resident typed).


DATABASE_UNAVAILABLE_MESSAGE = "系统繁忙，暂时无法处理您的请求，请稍后再试。"
# Seconds a client is told to wait (the pool pings and reconnects on the next request).
DATABASE_RETRY_AFTER = 5


def database_unavailable_response(scope: Any, exc: BaseException) -> JSONResponse:
    """The Chinese 503 for a database that is away, silent or busy: logged once, with the error's
    types and the route only (never its text, which may quote a statement or its values)."""
    route = scope.get("route")
    path = getattr(route, "path", None) or "<unmatched>"
    orig = getattr(exc, "orig", None)
    kinds = type(exc).__name__ + (f"/{type(orig).__name__}" if orig is not None else "")
    log.warning("database unavailable (%s) on %s %s", kinds, scope.get("method"), path)
    return JSONResponse(
        error_body(
            "database_unavailable",
            DATABASE_UNAVAILABLE_MESSAGE,
            retry_after=DATABASE_RETRY_AFTER,
        ),
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
