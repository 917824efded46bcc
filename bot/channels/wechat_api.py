"""The Official Account server API the channel needs: access_token, 客服消息 (custom send) and
模板消息 (template send).

The access token is fetched by one replica at a time (a short Redis lock), stored with an
expiry five minutes before WeChat's, and shared by all replicas. A send that fails with an
expired token refreshes it and tries again. Bot replies (`send_text`) retry other failures with
backoff, and a reply that still cannot be delivered is logged (hashed openid) and kept in a
dead-letter list. Notifications (`send_text_once`, `send_template`) make one attempt (plus the
token refresh) and report the errcode: the api's job queue owns their retries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from channels.wechat_store import Store

logger = logging.getLogger(__name__)

TOKEN_INVALID = {40001, 40014, 42001}  # invalid, malformed, expired access_token
RETRYABLE = {-1, 45009, 45011}  # system busy, API frequency limits
# 45015: more than 48 h since the resident's last message; 45047: too many messages without an
# answer; 40003/43004: unknown or unsubscribed user. Retrying cannot help.
REFRESH_MARGIN = 300
CUSTOM_SEND = "/cgi-bin/message/custom/send"
TEMPLATE_SEND = "/cgi-bin/message/template/send"
MAX_TEXT_CHARS = 600


class WeChatApiError(Exception):
    """WeChat answered with a non-zero errcode (or the HTTP call failed)."""

    def __init__(self, errcode: int, errmsg: str = "") -> None:
        """Keep the errcode for the retry decision."""
        super().__init__(f"errcode={errcode} {errmsg}")
        self.errcode = errcode


@dataclass
class SendResult:
    """Outcome of one custom-send: delivered or not, attempts made, last errcode."""

    delivered: bool
    attempts: int
    errcode: int = 0


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Split a long reply at line breaks into pieces WeChat accepts in one text message."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces or [""]


class WeChatApi:
    """Access-token cache and customer-service text sending for one AppID."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        api_base: str,
        store: Store,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        """Configure; nothing is fetched until the first send."""
        self.appid = appid
        self.secret = secret
        self.api_base = api_base.rstrip("/")
        self.store = store
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._local = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self.token_fetches = 0

    @property
    def _token_key(self) -> str:
        return f"token:{self.appid}"

    async def _fetch_token(self, client: httpx.AsyncClient) -> str:
        self.token_fetches += 1
        resp = await client.get(
            f"{self.api_base}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        data = resp.json()
        if "access_token" not in data:
            raise WeChatApiError(int(data.get("errcode", -1)), str(data.get("errmsg", "")))
        token = str(data["access_token"])
        ttl = max(60, int(data.get("expires_in", 7200)) - REFRESH_MARGIN)
        await self.store.set(self._token_key, json.dumps({"t": token}), ttl)
        logger.info("wechat access token refreshed (valid %ss here)", ttl)
        return token

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """The shared access token; fetched by one replica when missing or about to expire."""
        cached = await self.store.get(self._token_key)
        if cached:
            return str(json.loads(cached)["t"])
        async with self._local:  # one fetch per process ...
            deadline = time.monotonic() + 10
            while True:
                cached = await self.store.get(self._token_key)
                if cached:
                    return str(json.loads(cached)["t"])
                # ... and one per deployment: whoever takes the lock fetches, others wait.
                if await self.store.add(f"token-lock:{self.appid}", "1", ttl=10):
                    try:
                        return await self._fetch_token(client)
                    finally:
                        await self.store.delete(f"token-lock:{self.appid}")
                if time.monotonic() > deadline:
                    return await self._fetch_token(client)
                await asyncio.sleep(0.05)

    async def invalidate(self, token: str) -> None:
        """Forget a token WeChat refused (only if no replica has replaced it already)."""
        await self.store.delete(self._token_key, only_if=json.dumps({"t": token}))

    def client(self) -> httpx.AsyncClient:
        """One pooled client: making one per send costs ~100 ms."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
        """One POST of a message API with the shared token; WeChatApiError on any errcode."""
        token = await self.access_token(client)
        resp = await client.post(
            f"{self.api_base}{path}",
            params={"access_token": token},
            # WeChat shows \\uXXXX escapes literally, so send real UTF-8.
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        if resp.status_code >= 500:
            raise WeChatApiError(-1, f"http {resp.status_code}")
        data = resp.json()
        errcode = int(data.get("errcode", 0))
        if errcode:
            if errcode in TOKEN_INVALID:
                await self.invalidate(token)
            raise WeChatApiError(errcode, str(data.get("errmsg", "")))

    async def _send_once(self, client: httpx.AsyncClient, openid: str, text: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self._post(client, CUSTOM_SEND, body)

    async def _attempt(self, path: str, body: dict[str, Any]) -> SendResult:
        """One send; a refused token is fetched again and the send tried once more."""
        client = self.client()
        attempts, errcode = 0, 0
        while attempts < 2:
            attempts += 1
            try:
                await self._post(client, path, body)
                return SendResult(True, attempts)
            except WeChatApiError as exc:
                errcode = exc.errcode
                if errcode not in TOKEN_INVALID:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                errcode = -1  # unreachable, not JSON: WeChat is down as far as we can tell
                break
        return SendResult(False, attempts, errcode)

    async def send_text_once(self, openid: str, text: str) -> SendResult:
        """One customer-service text (no backoff): 45015 means outside the 48-hour window."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        return await self._attempt(CUSTOM_SEND, body)

    async def send_template(
        self, openid: str, template_id: str, data: dict[str, Any]
    ) -> SendResult:
        """One template message (模板消息, allowed outside the 48-hour window)."""
        body = {"touser": openid, "template_id": template_id, "data": data}
        return await self._attempt(TEMPLATE_SEND, body)

    async def send_text(self, openid: str, text: str, user_tag: str) -> SendResult:
        """Send one text through the custom-send API, retrying what can be retried."""
        attempts, errcode = 0, 0
        client = self.client()
        while attempts < self.retries:
            attempts += 1
            try:
                await self._send_once(client, openid, text)
                return SendResult(True, attempts)
            except WeChatApiError as exc:
                errcode = exc.errcode
                if errcode in TOKEN_INVALID:
                    continue  # refreshed on the next attempt, no wait needed
                if errcode not in RETRYABLE:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                errcode = -1
            if attempts < self.retries:
                await asyncio.sleep(self.backoff * 2 ** (attempts - 1))
        logger.error(
            "wechat reply NOT delivered user=%s errcode=%s attempts=%s chars=%s",
            user_tag,
            errcode,
            attempts,
            len(text),
        )
        await self.store.push(
            "undelivered",
            json.dumps({"user": user_tag, "errcode": errcode, "at": int(time.time())}),
        )
        return SendResult(False, attempts, errcode)
