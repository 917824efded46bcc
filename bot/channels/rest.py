"""The REST channel for residents' messages: no "/" commands, bounded length, no text in logs.

A turn that produced no message at all (the action server down) is answered with the domain's
apology; a turn whose output is only the takeover marker (a clerk is answering) is answered
with an empty list, and the marker itself never reaches the caller.

Enable it in `bot/credentials.yml` INSTEAD of the built-in `rest:` entry (both are named
"rest", so the URL stays `/webhooks/rest/webhook`):

    channels.rest.SafeRestInput:
      max_message_chars: 500
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from asyncio import CancelledError
from collections.abc import Awaitable, Callable
from typing import Any

import rasa.utils.endpoints
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse, ResponseStream

from channels import (
    MAX_MESSAGE_CHARS,
    clean_user_text,
    is_takeover_marker,
    neutralize_slash,
    without_takeover_markers,
)
from privacy.logs import install_log_redaction

logger = logging.getLogger(__name__)

MAX_SENDER_CHARS = 128
_CHANNEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def no_reply_text(request: Request) -> str | None:
    """The domain's apology (utter_error_generic) for a turn that produced no message."""
    ctx = getattr(getattr(request, "app", None), "ctx", None)
    agent = getattr(ctx, "agent", None)
    domain = getattr(agent, "domain", None)
    variants = (getattr(domain, "responses", None) or {}).get("utter_error_generic") or []
    return str(variants[0].get("text") or "") or None if variants else None


def _error(status: int, code: str, message: str) -> HTTPResponse:
    return response.json({"code": code, "message": message}, status=status)


class SafeRestInput(RestInput):
    """`RestInput` that neutralises "/" commands and caps the message length."""

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        """Keep the length limit and mask personal data in this process's logs."""
        self.max_message_chars = int(max_message_chars)
        install_log_redaction()

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's REST channel, so the webhook URL does not change."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> SafeRestInput:
        """Build from the `channels.rest.SafeRestInput:` entry of credentials.yml."""
        credentials = credentials or {}
        return cls(int(credentials.get("max_message_chars") or MAX_MESSAGE_CHARS))

    def _extract_message(self, req: Request) -> str | None:
        raw = (req.json or {}).get("message")
        return neutralize_slash(raw) if isinstance(raw, str) else None

    def _extract_input_channel(self, req: Request) -> str:
        declared = (req.json or {}).get("input_channel")
        if isinstance(declared, str) and _CHANNEL_NAME.match(declared):
            return declared
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Health check and webhook, like Rasa's, with the resident's text checked first."""
        module = inspect.getmodule(self)
        webhook = Blueprint(
            f"custom_webhook_{type(self).__name__}", module.__name__ if module else None
        )

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> ResponseStream | HTTPResponse:
            body = request.json
            if not isinstance(body, dict):
                return _error(400, "bad_request", "请求格式不正确。")
            sender_id = body.get("sender")
            if not isinstance(sender_id, str) or not 0 < len(sender_id) <= MAX_SENDER_CHARS:
                return _error(400, "bad_sender", "缺少会话标识（sender）。")
            raw = body.get("message")
            if raw is not None and not isinstance(raw, str):
                return _error(400, "bad_message", "消息内容应为文字。")
            text, reply = clean_user_text(raw, self.max_message_chars)
            if reply is not None:
                return response.json([{"recipient_id": sender_id, "text": reply}])
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if rasa.utils.endpoints.bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(on_new_message, text, sender_id, input_channel, metadata),
                    content_type="text/event-stream",
                )
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender_id,
                        input_channel=input_channel,
                        metadata=metadata,
                    )
                )
            except CancelledError:
                # Never the text: it may hold an ID number or a phone.
                logger.error("rest channel: message handling timed out")
            except Exception:
                logger.exception("rest channel: message handling failed")
            messages, taken_over = without_takeover_markers(list(collector.messages))
            if not messages and not taken_over:
                # The action server down or an action failing in Rasa: never a silent reply.
                text = no_reply_text(request)
                if text:
                    return response.json([{"recipient_id": sender_id, "text": text}])
            # A clerk answering: silence on purpose (the marker is for channels, not people).
            return response.json(messages)

        return webhook

    def stream_response(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[None]],
        text: str,
        sender_id: str,
        input_channel: str,
        metadata: dict[str, Any] | None,
    ) -> Callable[[Any], Awaitable[None]]:
        """Rasa's streamed answer, without the takeover marker."""

        async def stream(resp: Any) -> None:
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.ensure_future(
                self.on_message_wrapper(
                    on_new_message, text, queue, sender_id, input_channel, metadata
                )
            )
            while True:
                result = await queue.get()
                if result == "DONE":
                    break
                if not is_takeover_marker(result):
                    await resp.write(json.dumps(result) + "\n")
            await task

        return stream
