"""WeChat Official Account (公众号) channel: `/webhooks/wechat/webhook` on Rasa.

Enable it in `bot/credentials.yml` with `channels.wechat.WeChatInput:` (settings come from the
WECHAT_* environment variables, see docs/wechat.md). It handles:
- GET: server URL verification (signature over token, timestamp, nonce; echoes `echostr`);
- POST: text, voice (the `Recognition` text), subscribe/unsubscribe and menu CLICK events, in
  plain or security mode (消息加解密); anything else gets a polite "text only" reply.
WeChat waits 5 s and then retries up to three times, so a message is processed once (dedupe
by MsgId, or FromUserName + CreateTime for events); when the bot needs more than
WECHAT_REPLY_TIMEOUT seconds the request is answered "success" and the reply goes out later
through the customer-service message API. Openids never reach logs or Rasa in the clear.

It also serves the api (docs/loop.md):
- on a resident's message it registers the contact with the api at most once an hour per
  resident (`POST {API_URL}/api/v1/conversations/contact`, in the background);
- `POST /webhooks/wechat/notify` (service token) delivers one notification or staff message,
  de-duplicated by notification id, as a customer-service or a template message.
While a clerk has taken the conversation over the bot's only output is the takeover marker and
the resident gets nothing from the bot (the passive answer is "success").
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import clean_user_text, neutralize_slash, without_takeover_markers
from channels.wechat_api import SendResult, WeChatApi, split_text
from channels.wechat_crypto import (
    WeChatCrypto,
    WeChatProtocolError,
    check_signature,
    parse_xml,
    text_reply_xml,
)
from channels.wechat_store import Store, make_store

logger = logging.getLogger(__name__)

ONLY_TEXT_REPLY = "目前只能识别文字消息（也可以发语音），请直接打字告诉我您想问什么。"
VOICE_UNCLEAR_REPLY = "没有听清您的语音，请再说一遍，或者直接打字告诉我。"
ERROR_REPLY = "系统开小差了，请稍后再发一次。给您带来不便，非常抱歉。"
RATE_LIMITED_REPLY = "您发得太快了，请稍等一分钟再发。如需人工帮助，可以说“转人工”。"
MENU = ["查房本进度", "为什么办不了证", "要带什么材料", "我要信访", "查信访进度"]
GREETING = (
    "您好，欢迎关注房本助手！我可以帮您查询房本（不动产权证）办理进度、解释为什么暂时办不了证、"
    "告诉您要带什么材料，也可以帮您登记信访。\n请直接告诉我小区和房号，例如“观象山庄3号楼2单元501”，"
    "或回复下面的数字："
)
PASSIVE_MAX_BYTES = 2000  # WeChat's limit for a passive text reply is 2048 bytes
DEDUPE_TTL = 300
BUTTONS_TTL = 1800
NOTIFY_DONE_TTL = 7 * 86400  # the api's retries of one notification end well within a week
NOTIFY_CLAIM_TTL = 60  # one delivery in flight per notification id
CONTACT_RETRY_AFTER = 60  # a failed registration is tried again on a message after a minute
DEV_SERVICE_TOKEN = "dev-only-service-token-change-me"  # the same default as bot/actions
CONTACT_PATH = "/api/v1/conversations/contact"
# Messages and events that open WeChat's 48-hour customer-service window.
_WINDOW_EVENTS = {"subscribe", "click", "scan", "scancode_push", "scancode_waitmsg"}
_DIGITS = re.compile(r"^\s*([0-9０-９]{1,2})\s*$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


_SECRET_PARAMS = re.compile(
    r"\b(openid|access_token|secret|signature|msg_signature)=[^&\s\"']+", re.IGNORECASE
)


class RedactQueryFilter(logging.Filter):
    """Hides openids, tokens and secrets in logged URLs (httpx and Sanic access lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            message = record.getMessage()
        except Exception:
            return True
        clean = _SECRET_PARAMS.sub(r"\1=***", message)
        if clean != message:
            record.msg, record.args = clean, None
        request = getattr(record, "request", None)
        if isinstance(request, str):
            record.request = _SECRET_PARAMS.sub(r"\1=***", request)
        return True


def install_query_redaction() -> None:
    """Attach the filter once to the loggers that print URLs (WeChat puts secrets in them)."""
    for name in ("httpx", "httpcore", "sanic.access", "sanic.root", "sanic.error"):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactQueryFilter) for f in target.filters):
            target.addFilter(RedactQueryFilter())


@dataclass
class WeChatConfig:
    """Channel settings; each comes from credentials.yml or else its WECHAT_* variable."""

    token: str = ""
    appid: str = ""
    appsecret: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://api.weixin.qq.com"
    reply_timeout: float = 4.0
    redis_url: str = ""
    id_secret: str = ""
    max_body_bytes: int = 64 * 1024
    timestamp_tolerance: int = 300
    send_retries: int = 4
    send_backoff: float = 0.5
    # The api (same variables as bot/actions/config.py): contact registration, /notify auth.
    api_url: str = "http://127.0.0.1:8000"
    service_token: str = DEV_SERVICE_TOKEN
    environment: str = "development"
    contact_timeout: float = 3.0
    contact_interval: float = 3600.0
    # Messages one resident (openid) may send a minute; all WeChat traffic comes from Tencent's
    # addresses, so the openid is the only fair key. Over it: a polite reply, no bot.
    rate_per_openid: int = 20

    @classmethod
    def from_env(cls, credentials: dict[str, Any] | None = None) -> WeChatConfig:
        """Credentials entries win over WECHAT_* variables (REDIS_URL is the Redis fallback)."""
        creds = {k: v for k, v in (credentials or {}).items() if v not in (None, "")}
        env = os.environ

        def pick(name: str, default: str = "") -> str:
            return str(creds.get(name) or env.get(f"WECHAT_{name.upper()}") or default)

        return cls(
            token=pick("token"),
            appid=pick("appid"),
            appsecret=pick("appsecret"),
            encoding_aes_key=pick("encoding_aes_key"),
            api_base=pick("api_base", cls.api_base),
            reply_timeout=float(pick("reply_timeout", "4.0")),
            redis_url=pick("redis_url") or env.get("REDIS_URL", ""),
            id_secret=pick("id_secret"),
            max_body_bytes=int(pick("max_body_bytes", str(64 * 1024))),
            timestamp_tolerance=int(pick("timestamp_tolerance", "300")),
            send_retries=int(pick("send_retries", "4")),
            send_backoff=float(pick("send_backoff", "0.5")),
            api_url=str(creds.get("api_url") or env.get("API_URL") or cls.api_url).rstrip("/"),
            service_token=str(
                creds.get("service_token") or env.get("SERVICE_TOKEN") or DEV_SERVICE_TOKEN
            ),
            environment=env.get("ENVIRONMENT", "development"),
            contact_timeout=float(pick("contact_timeout", "3.0")),
            contact_interval=float(pick("contact_interval", "3600")),
            rate_per_openid=int(pick("rate_per_openid", "20")),
        )

    def service_token_usable(self) -> bool:
        """A token the api could share; the public development default only outside production."""
        token = self.service_token
        if not token:
            return False
        return self.environment != "production" or (
            token != DEV_SERVICE_TOKEN and "change-me" not in token
        )


class WeChatInput(InputChannel):
    """Rasa input channel for a WeChat Official Account."""

    @classmethod
    def name(cls) -> str:
        """URL segment: /webhooks/wechat/webhook."""
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        """Build from the credentials.yml entry and the environment."""
        return cls(WeChatConfig.from_env(credentials))

    def __init__(self, config: WeChatConfig, store: Store | None = None) -> None:
        """Set up crypto, the shared store and the API client (nothing is contacted yet)."""
        self.config = config
        self.store: Store = store or make_store(config.redis_url or None)
        self.crypto = (
            WeChatCrypto(config.token, config.encoding_aes_key, config.appid)
            if config.encoding_aes_key
            else None
        )
        self.api = WeChatApi(
            appid=config.appid,
            secret=config.appsecret,
            api_base=config.api_base,
            store=self.store,
            retries=config.send_retries,
            backoff=config.send_backoff,
        )
        self._id_key = (config.id_secret or config.token or "wechat").encode()
        self._background: set[asyncio.Task[Any]] = set()
        self._api_client: httpx.AsyncClient | None = None
        install_query_redaction()
        if not config.token:
            logger.warning("wechat channel enabled but WECHAT_TOKEN is not set: it answers 503")
        if not config.service_token_usable():
            logger.warning(
                "wechat channel: SERVICE_TOKEN is not set to a real secret: /notify answers 503 "
                "and contacts are not registered with the api"
            )

    # --- identities -------------------------------------------------------------------
    def user_tag(self, openid: str) -> str:
        """Short keyed hash of an openid for logs (never the openid itself)."""
        return hmac.new(self._id_key, b"log:" + openid.encode(), hashlib.sha256).hexdigest()[:12]

    def sender_id(self, openid: str) -> str:
        """The Rasa sender id of a resident: a keyed hash, so trackers hold no openid."""
        digest = hmac.new(self._id_key, b"sender:" + openid.encode(), hashlib.sha256)
        return "wx-" + digest.hexdigest()[:32]

    # --- the blueprint ----------------------------------------------------------------
    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Health, verification (GET) and message (POST) routes."""
        module = inspect.getmodule(self)
        bp = Blueprint("wechat_webhook", module.__name__ if module else __name__)

        @bp.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok", "configured": bool(self.config.token)})

        @bp.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return self.verify(request)

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request, on_new_message)

        @bp.route("/notify", methods=["POST"])
        async def notify(request: Request) -> HTTPResponse:
            return await self.notify(request)

        return bp

    def _fresh(self, timestamp: str) -> bool:
        if not timestamp.isdigit():
            return False
        return abs(time.time() - int(timestamp)) <= self.config.timestamp_tolerance

    def verify(self, request: Request) -> HTTPResponse:
        """Server URL verification: echo `echostr` when the signature is right."""
        if not self.config.token:
            return response.text("wechat channel not configured", status=503)
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        echostr = args.get("echostr", "")
        if not self._fresh(timestamp) or not check_signature(
            args.get("signature"), self.config.token, timestamp, nonce
        ):
            logger.warning("wechat verification refused: bad signature or timestamp")
            return response.text("forbidden", status=403)
        if not echostr or len(echostr) > 128:
            return response.text("bad request", status=400)
        return response.text(echostr)

    async def receive(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """Check, decrypt and dedupe one pushed message, then answer it (or say "success")."""
        cfg = self.config
        if not cfg.token:
            return response.text("wechat channel not configured", status=503)
        body = request.body or b""
        if len(body) > cfg.max_body_bytes:
            return response.text("too large", status=413)
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not self._fresh(timestamp):
            logger.warning("wechat message refused: timestamp outside the window")
            return response.text("forbidden", status=403)
        if not check_signature(args.get("signature"), cfg.token, timestamp, nonce):
            logger.warning("wechat message refused: bad signature")
            return response.text("forbidden", status=403)
        encrypted = args.get("encrypt_type", "raw") == "aes"
        try:
            fields = parse_xml(body, cfg.max_body_bytes)
            if encrypted:
                if self.crypto is None:
                    return response.text("security mode needs WECHAT_ENCODING_AES_KEY", status=400)
                ciphertext = fields.get("Encrypt", "")
                if not check_signature(
                    args.get("msg_signature"), cfg.token, timestamp, nonce, ciphertext
                ):
                    logger.warning("wechat message refused: bad msg_signature")
                    return response.text("forbidden", status=403)
                fields = parse_xml(self.crypto.decrypt(ciphertext), cfg.max_body_bytes)
        except WeChatProtocolError as exc:
            logger.warning("wechat message refused: %s", exc)
            return response.text("bad request", status=400)

        # In plain mode the signature does not cover the body: a nonce seen before may only
        # come back with the very same body (a WeChat retry); with another body it is a replay.
        body_digest = hashlib.sha256(body).hexdigest()
        nonce_key = f"nonce:{timestamp}:{hashlib.sha256(nonce.encode()).hexdigest()[:32]}"
        ttl = 2 * cfg.timestamp_tolerance + 60
        if not await self.store.add(nonce_key, body_digest, ttl):
            if await self.store.get(nonce_key) != body_digest:
                logger.warning("wechat message refused: replayed nonce")
                return response.text("forbidden", status=403)

        openid = fields.get("FromUserName", "")
        if not _OPENID.match(openid):
            return response.text("bad request", status=400)
        reply_ctx = ReplyContext(self, fields, encrypted)
        # MsgId for messages, FromUserName + CreateTime for events (as WeChat recommends);
        # the openid is part of both keys so two residents can never collide.
        msg_key = ":".join(
            (openid, fields.get("MsgId") or fields.get("CreateTime", ""), fields.get("Event", ""))
        )
        dedupe_key = "msg:" + hashlib.sha256(msg_key.encode()).hexdigest()[:40]
        if not await self.store.add(dedupe_key, json.dumps({"s": "processing"}), DEDUPE_TTL):
            return await self._duplicate(dedupe_key, reply_ctx)
        return await self._handle(fields, reply_ctx, dedupe_key, on_new_message)

    async def _duplicate(self, dedupe_key: str, ctx: ReplyContext) -> HTTPResponse:
        """A retry: never run the bot again; resend a passive reply WeChat evidently missed."""
        deadline = time.monotonic() + self.config.reply_timeout
        while True:
            state = json.loads(await self.store.get(dedupe_key) or '{"s": "gone"}')
            if state["s"] == "passive":
                logger.info("wechat retry answered from the first reply user=%s", ctx.user_tag)
                return ctx.text(state["text"])
            if state["s"] != "processing" or time.monotonic() > deadline:
                logger.info("wechat retry ignored (%s) user=%s", state["s"], ctx.user_tag)
                return response.text("success")
            await asyncio.sleep(0.05)

    async def _handle(
        self,
        fields: dict[str, str],
        ctx: ReplyContext,
        dedupe_key: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> HTTPResponse:
        msg_type = fields.get("MsgType", "")
        event = fields.get("Event", "").lower()
        if msg_type != "event" or event in _WINDOW_EVENTS:
            self._register_contact(ctx)
        text: str | None = None
        if msg_type == "text":
            text = fields.get("Content", "")
        elif msg_type == "voice":
            text = fields.get("Recognition", "")
            if not text.strip():
                return await self._remember_passive(dedupe_key, ctx, VOICE_UNCLEAR_REPLY)
        elif msg_type == "event" and event == "subscribe":
            await self._remember_buttons(ctx.openid, MENU)
            menu = "\n".join(f"【{i}】{title}" for i, title in enumerate(MENU, 1))
            return await self._remember_passive(dedupe_key, ctx, f"{GREETING}\n{menu}")
        elif msg_type == "event" and event == "click" and fields.get("EventKey"):
            text = fields["EventKey"]
        elif msg_type == "event":
            # unsubscribe, VIEW, LOCATION, SCAN ...: nothing to say (and no one to say it to).
            await self._mark(dedupe_key, {"s": "done"})
            return response.text("success")
        else:
            return await self._remember_passive(dedupe_key, ctx, ONLY_TEXT_REPLY)

        if await self._too_fast(ctx.openid):
            logger.info("wechat message over the per-resident rate user=%s", ctx.user_tag)
            return await self._remember_passive(dedupe_key, ctx, RATE_LIMITED_REPLY)
        message = await self._button_choice(ctx.openid, text)
        if message is None:
            message, refusal = clean_user_text(text)
            if refusal is not None:
                return await self._remember_passive(dedupe_key, ctx, refusal)
            message = neutralize_slash(message or "")
        task = asyncio.ensure_future(self._run_bot(on_new_message, message, ctx))
        try:
            outputs = await asyncio.wait_for(asyncio.shield(task), self.config.reply_timeout)
        except asyncio.TimeoutError:
            await self._mark(dedupe_key, {"s": "async"})
            logger.info("wechat bot slow, reply goes through custom send user=%s", ctx.user_tag)
            self._in_background(self._send_later(task, ctx))
            return response.text("success")
        reply = await self._render(ctx.openid, outputs) if outputs else ""
        if not reply:
            # A clerk is answering (the takeover marker only): nothing from the bot.
            await self._mark(dedupe_key, {"s": "done"})
            return response.text("success")
        if len(reply.encode()) > PASSIVE_MAX_BYTES:
            # Too long for one passive reply: several customer-service messages instead.
            await self._mark(dedupe_key, {"s": "async"})
            self._in_background(self._deliver(ctx, outputs_pieces(reply)))
            return response.text("success")
        return await self._remember_passive(dedupe_key, ctx, reply)

    async def _too_fast(self, openid: str) -> bool:
        """Count this resident's message in the current minute; True past the limit."""
        tag = hashlib.sha256(b"rate:" + openid.encode()).hexdigest()[:32]
        minute = int(time.time()) // 60
        count = await self.store.incr(f"rate:{tag}:{minute}", 120)
        return count > self.config.rate_per_openid

    def _in_background(self, coro: Awaitable[Any]) -> None:
        """Run a send after the answer to WeChat; keep a reference until it is done."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _run_bot(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        text: str,
        ctx: ReplyContext,
    ) -> list[dict[str, Any]]:
        collector = CollectingOutputChannel()
        try:
            await on_new_message(
                UserMessage(
                    text,
                    collector,
                    self.sender_id(ctx.openid),
                    input_channel=self.name(),
                    metadata={"channel": "wechat"},
                )
            )
        except Exception as exc:  # the resident still gets an answer
            logger.error("wechat bot failed (%s) user=%s", type(exc).__name__, ctx.user_tag)
            return [{"text": ERROR_REPLY}]
        outputs, taken_over = without_takeover_markers(list(collector.messages))
        if taken_over:
            return outputs  # usually empty: a clerk answers, the bot stays silent
        # No message at all (the action server down): the resident still gets an answer.
        return outputs or [{"text": ERROR_REPLY}]

    async def _render(self, openid: str, outputs: list[dict[str, Any]]) -> str:
        """One text for WeChat: the bot's bubbles, then its buttons as numbered choices."""
        parts: list[str] = []
        titles: list[str] = []
        payloads: list[str] = []
        for out in outputs:
            if out.get("text"):
                parts.append(str(out["text"]))
            for button in out.get("buttons") or []:
                title = str(button.get("title") or "").strip()
                if title:
                    titles.append(title)
                    payloads.append(str(button.get("payload") or title))
        if titles:
            await self._remember_buttons(openid, payloads)
            parts.append(
                "请回复数字：\n" + "\n".join(f"【{i}】{t}" for i, t in enumerate(titles, 1))
            )
        return "\n\n".join(parts)

    async def _remember_buttons(self, openid: str, payloads: list[str]) -> None:
        await self.store.set(
            f"buttons:{self.user_tag(openid)}",
            json.dumps(payloads, ensure_ascii=False),
            BUTTONS_TTL,
        )

    async def _button_choice(self, openid: str, text: str) -> str | None:
        """A bare number picks one of the choices the bot offered last (its payload)."""
        match = _DIGITS.match(text or "")
        if not match:
            return None
        raw = await self.store.get(f"buttons:{self.user_tag(openid)}")
        if not raw:
            return None
        index = int(match.group(1).translate(str.maketrans("０１２３４５６７８９", "0123456789")))
        payloads = json.loads(raw)
        if 1 <= index <= len(payloads):
            await self.store.delete(f"buttons:{self.user_tag(openid)}")
            return str(payloads[index - 1])
        return None

    async def _mark(self, dedupe_key: str, state: dict[str, Any]) -> None:
        await self.store.set(dedupe_key, json.dumps(state, ensure_ascii=False), DEDUPE_TTL)

    async def _remember_passive(
        self, dedupe_key: str, ctx: ReplyContext, text: str
    ) -> HTTPResponse:
        await self._mark(dedupe_key, {"s": "passive", "text": text})
        return ctx.text(text)

    async def _send_later(
        self, task: asyncio.Future[list[dict[str, Any]]], ctx: ReplyContext
    ) -> None:
        outputs = await task
        if outputs:
            reply = await self._render(ctx.openid, outputs)
            if reply:
                await self._deliver(ctx, outputs_pieces(reply))

    async def _deliver(self, ctx: ReplyContext, pieces: list[str]) -> None:
        for piece in pieces:
            await self.api.send_text(ctx.openid, piece, ctx.user_tag)

    # --- the api: contact registration ------------------------------------------------
    def _api(self) -> httpx.AsyncClient:
        if self._api_client is None:
            self._api_client = httpx.AsyncClient(timeout=self.config.contact_timeout)
        return self._api_client

    def _register_contact(self, ctx: ReplyContext) -> None:
        """Tell the api how to reach this resident, at most once an hour, in the background."""
        if self.config.service_token_usable():
            self._in_background(self._post_contact(ctx.openid, ctx.user_tag))

    async def _post_contact(self, openid: str, user_tag: str) -> None:
        cfg = self.config
        key = f"contact:{user_tag}"
        try:
            if not await self.store.add(key, "1", cfg.contact_interval):
                return  # registered within the hour (by this replica or another)
            resp = await self._api().post(
                cfg.api_url + CONTACT_PATH,
                json={"channel": "wechat", "openid": openid},
                headers={
                    "Authorization": f"Service {cfg.service_token}",
                    "X-Sender-Id": self.sender_id(openid),
                },
            )
            if resp.status_code < 300:
                return
            problem = f"http {resp.status_code}"
        except Exception as exc:
            problem = type(exc).__name__
        logger.warning("wechat contact not registered (%s) user=%s", problem, user_tag)
        try:  # tried again on a later message, not on every one
            await self.store.set(key, "retry", CONTACT_RETRY_AFTER)
        except Exception:
            logger.warning("wechat contact retry not scheduled user=%s", user_tag)

    # --- the api: notifications ------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        expected = self.config.service_token.encode()
        # Compare even on a wrong scheme, so the answer takes as long either way.
        same = hmac.compare_digest(token.strip().encode(), expected)
        return scheme.lower() == "service" and same

    async def notify(self, request: Request) -> HTTPResponse:
        """Deliver one notification from the api: `{"delivered", "errcode", "duplicate"}`."""
        if not self.config.token or not self.config.service_token_usable():
            return _json_error(503, "not_configured", "微信通道未配置。")
        if not self._authorized(request):
            return _json_error(401, "bad_service_token", "服务令牌无效。")
        if len(request.body or b"") > self.config.max_body_bytes:
            return _json_error(413, "too_large", "请求过大。")
        try:
            body = json.loads(request.body or b"")
        except ValueError:
            body = None
        parsed = _parse_notification(body)
        if isinstance(parsed, str):
            return _json_error(400, "bad_notification", parsed)
        note_id, openid, mode, text, template = parsed
        user_tag = self.user_tag(openid)
        done_key, claim_key = f"notify:{note_id}", f"notify-claim:{note_id}"
        if await self.store.get(done_key):
            logger.info("wechat notification %s already delivered user=%s", note_id, user_tag)
            return _notify_answer(True, 0, duplicate=True)
        if not await self.store.add(claim_key, "1", NOTIFY_CLAIM_TTL):
            # Another call is sending this very notification: the caller asks again later.
            if await self.store.get(done_key):
                return _notify_answer(True, 0, duplicate=True)
            logger.info("wechat notification %s in flight elsewhere user=%s", note_id, user_tag)
            return _notify_answer(False, -1, duplicate=True)
        try:
            if template is not None:
                result = await self.api.send_template(
                    openid, template["template_id"], template["data"]
                )
            else:
                result = await self._send_pieces(note_id, openid, text)
            if result.delivered:
                await self.store.set(done_key, mode, NOTIFY_DONE_TTL)
        finally:
            await self.store.delete(claim_key)
        if result.delivered:
            logger.info("wechat notification %s delivered (%s) user=%s", note_id, mode, user_tag)
        else:
            logger.warning(
                "wechat notification %s not delivered (%s) errcode=%s user=%s",
                note_id,
                mode,
                result.errcode,
                user_tag,
            )
        return _notify_answer(result.delivered, result.errcode)

    async def _send_pieces(self, note_id: int, openid: str, text: str) -> SendResult:
        """A long text as several customer-service messages; a retry resumes after the last
        piece that went out, so the resident does not read the beginning twice."""
        pieces = split_text(text)
        part_key = f"notify-part:{note_id}"
        sent = int(await self.store.get(part_key) or 0)
        result = SendResult(True, 0)
        for index in range(sent, len(pieces)):
            result = await self.api.send_text_once(openid, pieces[index])
            if not result.delivered:
                return result
            if index + 1 < len(pieces):
                await self.store.set(part_key, str(index + 1), NOTIFY_DONE_TTL)
        await self.store.delete(part_key)
        return result


def _json_error(status: int, code: str, message: str) -> HTTPResponse:
    return response.json({"code": code, "message": message}, status=status)


def _notify_answer(delivered: bool, errcode: int, duplicate: bool = False) -> HTTPResponse:
    return response.json({"delivered": delivered, "errcode": errcode, "duplicate": duplicate})


def _parse_notification(
    body: Any,
) -> tuple[int, str, str, str, dict[str, Any] | None] | str:
    """`(id, openid, mode, text, template)` of a /notify body, or what is wrong (Chinese)."""
    if not isinstance(body, dict):
        return "请求格式不正确。"
    note_id = body.get("notification_id")
    if isinstance(note_id, bool) or not isinstance(note_id, int) or note_id < 0:
        return "缺少通知编号（notification_id）。"
    openid = body.get("openid")
    if not isinstance(openid, str) or not _OPENID.match(openid):
        return "openid 不正确。"
    mode = body.get("mode")
    text = body.get("text")
    if not isinstance(text, str):
        text = ""
    if mode == "custom":
        if not text.strip():
            return "客服消息缺少内容（text）。"
        return note_id, openid, mode, text, None
    if mode == "template":
        template = body.get("template")
        if (
            not isinstance(template, dict)
            or not isinstance(template.get("template_id"), str)
            or not template["template_id"]
            or not isinstance(template.get("data"), dict)
        ):
            return "模板消息缺少 template_id 或 data。"
        return note_id, openid, mode, text, template
    return "mode 只能是 custom 或 template。"


def outputs_pieces(reply: str) -> list[str]:
    """A long reply as several custom-send texts."""
    return split_text(reply)


class ReplyContext:
    """What a passive reply needs: who to answer, from which account, in which mode."""

    def __init__(self, channel: WeChatInput, fields: dict[str, str], encrypted: bool) -> None:
        """Remember the sender and the account of the incoming message."""
        self.channel = channel
        self.openid = fields.get("FromUserName", "")
        self.account = fields.get("ToUserName", "")
        self.encrypted = encrypted
        self.user_tag = channel.user_tag(self.openid)

    def text(self, content: str) -> HTTPResponse:
        """A passive text reply, encrypted when the request was."""
        xml = text_reply_xml(self.openid, self.account, content, int(time.time()))
        crypto = self.channel.crypto
        if self.encrypted and crypto is not None:
            xml = crypto.encrypted_reply(xml, str(int(time.time())), secrets.token_hex(8))
        return response.text(xml, content_type="application/xml; charset=utf-8")
