"""A simulated WeChat platform for tests, written from the protocol documentation and
independently of the channel's own code:

- `WeChatSimulator` plays WeChat's servers pushing messages to our webhook: real XML, real
  sha1 signatures, real AES-256-CBC (消息加解密) with a test EncodingAESKey, and it checks and
  decrypts the passive replies the way WeChat does;
- `FakeWeChatApi` is a real HTTP server on a free local port with the server APIs the
  channel calls: `GET /cgi-bin/token`, `POST /cgi-bin/message/custom/send` and
  `POST /cgi-bin/message/template/send`. Like WeChat it refuses a customer-service message
  (errcode 45015) to a resident whose last message is more than 48 hours old on its clock
  (`advance`, `resident_wrote`); a simulator built with `api=` tells it when residents write.
  `down = "http"` (HTTP 503) or `"errcode"` (errcode -1, system busy) plays an outage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TEST_TOKEN = "fangbenTestToken2026"
TEST_APPID = "wx1234567890abcdef"
TEST_SECRET = "test-app-secret-0123456789abcdef"
# 43 characters of base64 (32 bytes), like the EncodingAESKey the admin console generates.
TEST_AES_KEY = base64.b64encode(hashlib.sha256(b"fangben test key").digest()).decode()[:43]
ACCOUNT = "gh_fangben0001"
TEST_SERVICE_TOKEN = "test-service-token-0123456789"  # what the api presents to /notify


def sha1_sorted(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted, concatenated strings."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _key(aes_key: str) -> bytes:
    return base64.b64decode(aes_key + "=")


def wx_encrypt(aes_key: str, appid: str, message: str) -> str:
    """Encrypt the way WeChat does: random(16) + len(4, big-endian) + msg + appid, PKCS#7/32."""
    key = _key(aes_key)
    raw = message.encode()
    plain = os.urandom(16) + struct.pack("!I", len(raw)) + raw + appid.encode()
    n = 32 - (len(plain) % 32)
    plain += bytes([n] * n)
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def wx_decrypt(aes_key: str, appid: str, encrypted: str) -> str:
    """Decrypt a reply and check the appid at its end."""
    key = _key(aes_key)
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    plain = plain[: -plain[-1]]
    length = struct.unpack("!I", plain[16:20])[0]
    assert plain[20 + length :].decode() == appid, "reply encrypted for another appid"
    return plain[20 : 20 + length].decode()


def xml_of(fields: dict[str, Any]) -> str:
    """A pushed message as WeChat writes it (CDATA for strings, bare numbers)."""
    parts = []
    for k, v in fields.items():
        inner = str(v) if isinstance(v, int) else f"<![CDATA[{v}]]>"
        parts.append(f"<{k}>{inner}</{k}>")
    return "<xml>" + "".join(parts) + "</xml>"


def fields_of(xml: str) -> dict[str, str]:
    """Flat fields of a reply."""
    return {c.tag: c.text or "" for c in ET.fromstring(xml)}


@dataclass
class Reply:
    """What our webhook answered, as WeChat would read it."""

    status: int
    body: str
    fields: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def content(self) -> str | None:
        """The text of a passive reply, None for "success"/empty answers."""
        return self.fields.get("Content")


@dataclass
class Prepared:
    """A signed request ready to be sent (and re-sent, for replay tests)."""

    params: dict[str, str]
    body: bytes
    openid: str = ""
    opens_window: bool = False  # a resident's own action: starts WeChat's 48-hour window


# Per WeChat's customer-service message rules: messages, subscribing, some menu events, scans.
WINDOW_EVENTS = {"subscribe", "click", "scan", "scancode_push", "scancode_waitmsg"}
WINDOW_SECONDS = 48 * 3600


class WeChatSimulator:
    """Pushes messages to the webhook the way WeChat's servers do."""

    def __init__(
        self,
        webhook_url: str,
        *,
        token: str = TEST_TOKEN,
        appid: str = TEST_APPID,
        aes_key: str = TEST_AES_KEY,
        mode: str = "aes",
        api: FakeWeChatApi | None = None,
    ) -> None:
        self.url = webhook_url
        self.token, self.appid, self.aes_key, self.mode = token, appid, aes_key, mode
        self.api = api  # told of every message a resident sends (the 48-hour window)
        self.http = httpx.Client(timeout=15)
        self._msg_id = 23_000_000_000_000_000 + secrets.randbelow(10**15) * 1000

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def next_msg_id(self) -> int:
        """A fresh 64-bit-looking MsgId."""
        self._msg_id += 1
        return self._msg_id

    def verify(
        self, echostr: str, *, good: bool = True, timestamp: int | None = None
    ) -> httpx.Response:
        """The GET WeChat sends when the admin saves the server URL."""
        ts, nonce = str(timestamp or int(time.time())), str(secrets.randbelow(10**9))
        sig = sha1_sorted(self.token, ts, nonce) if good else sha1_sorted("wrong", ts, nonce)
        params = {"signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}
        return self.http.get(self.url, params=params)

    def prepare(
        self, inner_xml: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> Prepared:
        """Sign (and in security mode encrypt) a message."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or str(secrets.randbelow(10**10))
        inner = fields_of(inner_xml)
        openid = inner.get("FromUserName", "")
        opens_window = (
            inner.get("MsgType") != "event" or inner.get("Event", "").lower() in WINDOW_EVENTS
        )
        params = {
            "signature": sha1_sorted(self.token, ts, nonce),
            "timestamp": ts,
            "nonce": nonce,
            "openid": openid,
        }
        if self.mode == "aes":
            encrypted = wx_encrypt(self.aes_key, self.appid, inner_xml)
            params["encrypt_type"] = "aes"
            params["msg_signature"] = sha1_sorted(self.token, ts, nonce, encrypted)
            body = xml_of({"ToUserName": ACCOUNT, "Encrypt": encrypted})
        else:
            body = inner_xml
        return Prepared(params, body.encode(), openid, opens_window)

    def send(self, prepared: Prepared) -> Reply:
        """POST a prepared request and read the answer as WeChat would."""
        if self.api is not None and prepared.opens_window and prepared.openid:
            self.api.resident_wrote(prepared.openid)
        start = time.monotonic()
        resp = self.http.post(
            self.url,
            params=prepared.params,
            content=prepared.body,
            headers={"Content-Type": "text/xml"},
        )
        reply = Reply(resp.status_code, resp.text, elapsed=time.monotonic() - start)
        if resp.status_code == 200 and resp.text.startswith("<xml>"):
            outer = fields_of(resp.text)
            if "Encrypt" in outer:
                sig = sha1_sorted(self.token, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"])
                assert sig == outer["MsgSignature"], "reply msg_signature does not verify"
                reply.fields = fields_of(wx_decrypt(self.aes_key, self.appid, outer["Encrypt"]))
            else:
                reply.fields = outer
        return reply

    def message(self, openid: str, msg_type: str, msg_id: int | None = None, **extra: Any) -> str:
        """Inner XML of a user message."""
        fields: dict[str, Any] = {
            "ToUserName": ACCOUNT,
            "FromUserName": openid,
            "CreateTime": int(time.time()),
            "MsgType": msg_type,
        }
        fields.update(extra)
        if msg_type != "event":
            fields["MsgId"] = msg_id or self.next_msg_id()
        return xml_of(fields)

    def text(self, openid: str, content: str, msg_id: int | None = None) -> Reply:
        """The resident types a text message."""
        return self.send(self.prepare(self.message(openid, "text", msg_id, Content=content)))

    def voice(self, openid: str, recognition: str) -> Reply:
        """The resident sends a voice message (with WeChat's speech recognition)."""
        xml = self.message(
            openid, "voice", MediaId="media-1", Format="amr", Recognition=recognition
        )
        return self.send(self.prepare(xml))

    def event(self, openid: str, event: str, **extra: Any) -> Reply:
        """An event push (subscribe, unsubscribe, CLICK ...)."""
        return self.send(self.prepare(self.message(openid, "event", Event=event, **extra)))


class FakeWeChatApi:
    """Token, customer-service and template sends on 127.0.0.1 and a free port."""

    def __init__(self, appid: str = TEST_APPID, secret: str = TEST_SECRET) -> None:
        self.appid, self.secret = appid, secret
        self.valid_tokens: set[str] = set()
        self.token_requests = 0
        self.sent: list[dict[str, Any]] = []  # customer-service messages delivered
        self.templates: list[dict[str, Any]] = []  # template messages delivered
        self.send_attempts = 0  # customer-service sends tried
        self.template_attempts = 0
        # errcodes to answer the next sends with (None: that send goes through)
        self.fail_next: list[int | None] = []
        self.expires_in = 7200
        self.down: str | None = None  # "http": 503 everywhere; "errcode": errcode -1
        self.send_delay = 0.0  # seconds each message send takes
        self.template_ids: set[str] | None = None  # when set, other ids get 40037
        self.enforce_window = True
        self.last_message_at: dict[str, float] = {}  # openid -> the simulator clock
        self.clock_offset = 0.0
        self.cond = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                return

            def _json(self, data: dict[str, Any]) -> None:
                raw = json.dumps(data, ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _down(self) -> bool:
                """Answer as an unavailable WeChat; True when it did."""
                if api.down == "http":
                    self.send_error(503, "Service Unavailable")
                    return True
                if api.down == "errcode":
                    self._json({"errcode": -1, "errmsg": "system error"})
                    return True
                return False

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path != "/cgi-bin/token":
                    self.send_error(404)
                    return
                with api.cond:
                    api.token_requests += 1
                    if self._down():
                        return
                    if q.get("grant_type") != "client_credential" or (
                        q.get("appid"),
                        q.get("secret"),
                    ) != (api.appid, api.secret):
                        self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
                        return
                    token = "TOKEN_" + secrets.token_hex(8)
                    api.valid_tokens.add(token)
                time.sleep(0.05)  # a real round trip, so concurrent fetches would overlap
                self._json({"access_token": token, "expires_in": api.expires_in})

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                template = url.path == "/cgi-bin/message/template/send"
                if url.path != "/cgi-bin/message/custom/send" and not template:
                    self.send_error(404)
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if api.send_delay:
                    time.sleep(api.send_delay)
                with api.cond:
                    if template:
                        api.template_attempts += 1
                    else:
                        api.send_attempts += 1
                    if self._down():
                        return
                    if q.get("access_token") not in api.valid_tokens:
                        self._json({"errcode": 42001, "errmsg": "access_token expired"})
                        return
                    code = api.fail_next.pop(0) if api.fail_next else None
                    if code is not None:
                        if code in (40001, 42001):
                            api.valid_tokens.discard(q["access_token"])
                        self._json({"errcode": code, "errmsg": "simulated"})
                        return
                    body = json.loads(raw.decode("utf-8"))
                    assert "\\u" not in raw.decode("utf-8"), "text must be sent as UTF-8"
                    error = api._template_error(body) if template else api._custom_error(body)
                    if error:
                        self._json({"errcode": error[0], "errmsg": error[1]})
                        return
                    if template:
                        api.templates.append(body)
                    else:
                        api.sent.append(body)
                    api.cond.notify_all()
                answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
                if template:
                    answer["msgid"] = secrets.randbelow(10**12)
                self._json(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def now(self) -> float:
        """The simulator's clock (wall time moved by `advance`)."""
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock forward, e.g. past the 48-hour window."""
        with self.cond:
            self.clock_offset += seconds

    def resident_wrote(self, openid: str, at: float | None = None) -> None:
        """Record a resident's message (now, or at a time of the simulator's clock)."""
        with self.cond:
            self.last_message_at[openid] = self.now() if at is None else at

    def _custom_error(self, body: dict[str, Any]) -> tuple[int, str] | None:
        if body.get("msgtype") != "text" or not isinstance(body.get("text"), dict):
            return 40008, "invalid message type"
        if not self.enforce_window:
            return None
        last = self.last_message_at.get(str(body.get("touser")))
        if last is None or self.now() - last > WINDOW_SECONDS:
            return 45015, "response out of time limit or subscription is canceled"
        return None

    def _template_error(self, body: dict[str, Any]) -> tuple[int, str] | None:
        if not body.get("touser") or not isinstance(body.get("data"), dict):
            return 47001, "data format error"
        template_id = body.get("template_id")
        if not template_id or (
            self.template_ids is not None and template_id not in self.template_ids
        ):
            return 40037, "invalid template_id"
        return None

    def wait_for_templates(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until n template messages went through (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.templates) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.templates)

    def expire_all_tokens(self) -> None:
        """As if every issued access token had expired."""
        with self.cond:
            self.valid_tokens.clear()

    def wait_for_sent(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Block until n messages went through custom send (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.sent) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.sent)

    def __enter__(self) -> FakeWeChatApi:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
