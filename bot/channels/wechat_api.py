"""The Official Account server API the channel needs: access_token and 客服消息 (custom send).

The access token is fetched by one replica at a time (a short Redis lock), stored with an
expiry five minutes before WeChat's, and shared by all replicas. A send that fails with an
expired token refreshes it and tries again; other failures are retried with backoff, and a
reply that still cannot be delivered is logged (hashed openid) and kept in a dead-letter list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httpx

from channels.wechat_store import Store

logger = logging.getLogger(__name__)

TOKEN_INVALID = {40001, 40014, 42001}  # invalid, malformed, expired access_token
RETRYABLE = {-1, 45009, 45011}  # system busy, API frequency limits
# 45015: more than 48 h since the resident's last message; 45047: too many messages without an
# answer; 40003/43004: unknown or unsubscribed user. Retrying cannot help.
REFRESH_MARGIN = 300
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

    async def _send_once(self, client: httpx.AsyncClient, openid: str, text: str) -> str:
        token = await self.access_token(client)
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        resp = await client.post(
            f"{self.api_base}/cgi-bin/message/custom/send",
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
        return token

    async def send_text(self, openid: str, text: str, user_tag: str) -> SendResult:
        """Send one text through the custom-send API, retrying what can be retried."""
        attempts, errcode = 0, 0
        if self._client is None:  # one pooled client: making one per send costs ~100 ms
            self._client = httpx.AsyncClient(timeout=self.timeout)
        client = self._client
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
