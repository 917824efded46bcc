"""A real HTTP server playing the WeChat channel's notify endpoint (bot/channels owns the real
one): records every request, shows each notification id once, can be told to fail or be slow."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.core.config import settings


class FakeChannel:
    """State of the fake: what it received and what it should answer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (between tests)."""
        with self.lock:
            self.received: list[dict[str, Any]] = []
            # The messages the resident sees: one per notification id.
            self.shown: dict[int, dict[str, Any]] = {}
            self.fail_status: int | None = None
            self.custom_errcode: int | None = None
            self.delay_first = 0.0
            self.token_seen: list[str] = []

    def handle(self, body: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.received.append(body)
            self.token_seen.append(auth)
            delay, self.delay_first = self.delay_first, 0.0
            fail = self.fail_status
        if auth != f"Service {settings.service_token}":
            return 401, {"code": "unauthorized"}
        if fail:
            return fail, {"code": "down"}
        if body.get("mode") == "custom" and self.custom_errcode:
            return 200, {"delivered": False, "errcode": self.custom_errcode, "duplicate": False}
        nid = int(body["notification_id"])
        with self.lock:
            duplicate = nid in self.shown
            if not duplicate:
                self.shown[nid] = body
        # Slow after sending, as when WeChat accepted the message but the answer is late.
        if delay:
            time.sleep(delay)
        return 200, {"delivered": True, "errcode": 0, "duplicate": duplicate}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeChannel

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path != "/webhooks/wechat/notify":
            status, answer = 404, {"code": "not_found"}
        else:
            status, answer = self.fake.handle(body, self.headers.get("Authorization", ""))
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the worker was killed while we were slow

    def log_message(self, *_args: Any) -> None:
        return None


class FakeChannelServer:
    """Runs the fake on a free 127.0.0.1 port in a thread."""

    def __init__(self) -> None:
        self.fake = FakeChannel()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeChannelServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
