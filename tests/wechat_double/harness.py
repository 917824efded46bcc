"""Runs a Rasa input channel's blueprint in a real Sanic server (127.0.0.1, free port) in a
background thread, with a scripted bot as `on_new_message`; `RecordingApi` stands in for the
api's contact endpoint (a real HTTP server that records what the channel posts)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from wechat_double.simulator import FakeWeChatApi, WeChatSimulator

_FAKE_RASA = Path(__file__).resolve().parents[1] / "api" / "chat" / "fake_rasa.py"


def _load_fake_rasa() -> Any:
    spec = importlib.util.spec_from_file_location("fake_rasa_for_wechat", _FAKE_RASA)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def redis_url_for_tests() -> str | None:
    """The real Redis for replica tests (TEST_REDIS_URL, db 15 by default); None when it is
    not running, except under CI, where that is a failure."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except Exception:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at {url} is required under CI")
        return None
    return url


class ScriptedBot:
    """`on_new_message` stand-in with the web chat's scripted replies (status, petition),
    an optional delay per text, and a record of what reached it."""

    def __init__(self) -> None:
        self.fake = _load_fake_rasa().FakeRasa()
        self.calls: list[tuple[str, str]] = []
        self.delays: dict[str, float] = {}
        self.extra_reply: dict[str, str] = {}
        # Senders a clerk has taken over: the bot's only output is the takeover marker.
        self.taken_over: set[str] = set()

    async def __call__(self, message: Any) -> None:
        self.calls.append((message.sender_id, message.text))
        delay = self.delays.get(message.text, 0.0)
        if delay:
            await asyncio.sleep(delay)
        if message.sender_id in self.taken_over:
            await message.output_channel.send_custom_json(message.sender_id, {"takeover": True})
            return
        if message.text in self.extra_reply:
            await message.output_channel.send_text_message(
                message.sender_id, self.extra_reply[message.text]
            )
            return
        for m in self.fake.reply(message.sender_id, message.text):
            if m.get("buttons"):
                await message.output_channel.send_text_with_buttons(
                    message.sender_id, m["text"], m["buttons"]
                )
            else:
                await message.output_channel.send_text_message(message.sender_id, m["text"])


class ChannelServer:
    """A real HTTP server for one channel; `url` is its webhook."""

    def __init__(
        self, channel: Any, on_new_message: Callable[[Any], Awaitable[Any]], prefix: str
    ) -> None:
        # Test mode lets Sanic start several apps in one process (its start-up "touch-up"
        # rewrites class methods once otherwise).
        Sanic.test_mode = True
        self.app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
        self.app.config.ACCESS_LOG = False
        self.app.blueprint(channel.blueprint(on_new_message), url_prefix=prefix)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}{prefix}"
        self.url = self.base + "/webhook"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            self.app.create_server(sock=self.sock, return_asyncio_server=True)
        )
        assert server is not None
        self.server = server
        self.loop.run_until_complete(server.startup())
        self.loop.run_until_complete(server.before_start())
        self.loop.run_until_complete(server.after_start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> ChannelServer:
        self.thread.start()
        assert self.ready.wait(10), "channel server did not start"
        return self

    def __exit__(self, *_exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.sock.close()


@dataclass
class RecordedCall:
    """One request the channel made to the api."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class RecordingApi:
    """A real HTTP server on a free port playing the api's contact endpoint: records every
    call, answers `status` (204) after `delay` seconds."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.status = 204
        self.delay = 0.0
        self.cond = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_a: Any) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = raw
                call = RecordedCall(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                if api.delay:
                    time.sleep(api.delay)
                with api.cond:
                    api.calls.append(call)
                    api.cond.notify_all()
                self.send_response(api.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def wait_for(self, n: int, timeout: float = 5.0) -> list[RecordedCall]:
        """Block until n calls arrived (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.calls) < n and time.monotonic() < deadline:
                self.cond.wait(0.05)
            return list(self.calls)

    def __enter__(self) -> RecordingApi:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class WeChatRig:
    """Everything one test drives: simulator → channel (real server) → scripted bot → fake API."""

    channel: Any
    bot: ScriptedBot
    server: ChannelServer
    sim: WeChatSimulator
    api: FakeWeChatApi
    contacts: RecordingApi | None = None  # the api's contact endpoint, when the test has one
