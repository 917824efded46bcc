"""The WeChat-style web chat: the page, its static files and the JSON endpoints it calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Cookie, Header, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from app.chat import service as chat_service
from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
static_files = StaticFiles(directory=str(HERE / "static"))
router = APIRouter(prefix="/chat", tags=["web chat"])

QUICK_STARTS = ["查房本进度", "为什么办不了证", "要带什么材料", "我要信访", "查信访进度"]
# The page loads nothing from elsewhere and runs no inline script.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ConversationCookie = Annotated[str | None, Cookie(alias=chat_service.COOKIE_NAME)]
# Required on the JSON calls: a cross-site form cannot set it, so no CSRF through the cookie.
ChatHeader = Annotated[str | None, Header(alias="X-Chat-Client")]


class MessageIn(BaseModel):
    """A typed message, or a chip tap carrying the button's payload."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=4 * chat_service.MAX_CHARS)
    payload: str | None = Field(default=None, max_length=2000)


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        chat_service.COOKIE_NAME,
        token,
        max_age=chat_service.COOKIE_MAX_AGE,
        path="/chat",
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )


def _conversation(token: str | None, client: str | None) -> str:
    if client != "web":
        raise AppError(403, "bad_client", "请通过聊天页面发送消息。")
    return chat_service.read_conversation(token)


@router.get("", response_class=HTMLResponse, include_in_schema=False)
def chat_page(request: Request, fb_chat: ConversationCookie = None) -> Response:
    """The chat page; issues a new signed conversation id when the cookie is missing or forged."""
    token = fb_chat
    try:
        chat_service.read_conversation(token)
        fresh = None
    except AppError:
        _, fresh = chat_service.new_conversation()
    response = templates.TemplateResponse(
        request, "chat.html", {"quick_starts": QUICK_STARTS, "max_chars": chat_service.MAX_CHARS}
    )
    response.headers.update(_PAGE_HEADERS)
    if fresh:
        _set_cookie(response, fresh)
    return response


@router.get("/api/history")
def chat_history(
    db: DbSession,
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    fb_chat: ConversationCookie = None,
    x_chat_client: ChatHeader = None,
) -> dict[str, Any]:
    """The conversation of this browser (from its signed cookie), oldest bubble first; with
    `after`, only the bubbles newer than that id (the page polls this for notices)."""
    conversation_id = _conversation(fb_chat, x_chat_client)
    messages = chat_service.list_history(db=db, conversation_id=conversation_id, after=after)
    return {"messages": messages}


@router.post("/api/messages")
async def chat_send(
    body: MessageIn,
    request: Request,
    db: DbSession,
    fb_chat: ConversationCookie = None,
    x_chat_client: ChatHeader = None,
) -> dict[str, Any]:
    """Send one message to the bot through the api and answer with the bot's bubbles."""
    conversation_id = _conversation(fb_chat, x_chat_client)
    ip = request.client.host if request.client else "unknown"
    return await chat_service.send(
        db=db, conversation_id=conversation_id, text=body.text, payload=body.payload, ip=ip
    )
