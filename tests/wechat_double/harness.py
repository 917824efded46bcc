"""Runs a Rasa input channel's blueprint in a real Sanic server (127.0.0.1, free port) in a
background thread, with a scripted bot as `on_new_message`."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanic import Sanic

from wechat_double.simulator import FakeWeChatApi, WeChatSimulator

_FAKE_RASA = Path(__file__).resolve().parents[1] / "api" / "chat" / "fake_rasa.py"


def _load_fake_rasa() -> Any:
    spec = importlib.util.spec_from_file_location("fake_rasa_for_wechat", _FAKE_RASA)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScriptedBot:
    """`on_new_message` stand-in with the web chat's scripted replies (status, petition),
    an optional delay per text, and a record of what reached it."""

    def __init__(self) -> None:
        self.fake = _load_fake_rasa().FakeRasa()
        self.calls: list[tuple[str, str]] = []
        self.delays: dict[str, float] = {}
        self.extra_reply: dict[str, str] = {}

    async def __call__(self, message: Any) -> None:
        self.calls.append((message.sender_id, message.text))
        delay = self.delays.get(message.text, 0.0)
        if delay:
            await asyncio.sleep(delay)
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
class WeChatRig:
    """Everything one test drives: simulator → channel (real server) → scripted bot → fake API."""

    channel: Any
    bot: ScriptedBot
    server: ChannelServer
    sim: WeChatSimulator
    api: FakeWeChatApi
