"""A small fake of Rasa's REST channel (a real HTTP server on a free port) with scripted,
realistic Chinese replies and buttons, recording every message it receives."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ADDRESS_RE = re.compile(r"(观象山庄|海岸花园).*?(\d+)")
PHONE_RE = re.compile(r"1[3-9]\d{9}")


def _b(title: str, payload: str | None = None) -> dict[str, str]:
    return {"title": title, "payload": payload or title}


class FakeRasa:
    """Scripted bot: status lookups by address, a petition form, and a fallback."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.channels: list[str | None] = []  # the input_channel each message declared
        self.state: dict[str, dict[str, Any]] = {}
        self.delay = 0.0
        self.delay_all = 0.0
        self.fail_status: int | None = None
        # A clerk has taken over: "silent" answers [], "marker" only the custom {"takeover": true}
        # a bot emits for it (Rasa's REST channel sends custom json as {"custom": ...}).
        self.takeover: str | None = None
        self.counter = 0
        self.lock = threading.Lock()
        # Called with (sender, text) before each answer, as Rasa's actions call the api back.
        self.before_reply: Callable[[str, str], None] | None = None

    def reply(self, sender: str, text: str) -> list[dict[str, Any]]:
        """The bot's answer to one message (list of REST-channel bubbles)."""
        with self.lock:
            self.received.append((sender, text))
            st = self.state.setdefault(sender, {})
        if self.delay_all:
            time.sleep(self.delay_all)
        if self.before_reply is not None:
            self.before_reply(sender, text)
        if self.takeover == "silent":
            return []
        if self.takeover == "marker":
            return [{"recipient_id": sender, "custom": {"takeover": True}}]
        out: list[dict[str, Any]] = []

        def say(t: str, buttons: list[dict[str, str]] | None = None) -> None:
            m: dict[str, Any] = {"recipient_id": sender, "text": t}
            if buttons:
                m["buttons"] = buttons
            out.append(m)

        form = st.get("form")
        if form == "name":
            st["name"], st["form"] = text, "phone"
            say("请留一个能联系到您的手机号（11位）。")
        elif form == "phone":
            if not PHONE_RE.search(text):
                say("手机号好像不对，请输入11位手机号。")
            else:
                st["form"] = "description"
                say("请简单说一下您的情况，比如哪个小区、卡在哪一步。")
        elif form == "description":
            st["form"] = "consent"
            say(
                "为了处理您的信访，我们需要把您的姓名、手机号和情况转交给相关部门。您同意吗？",
                [_b("同意", "/affirm"), _b("不同意", "/deny")],
            )
        elif form == "consent":
            st.pop("form")
            if text in ("/affirm", "同意"):
                with self.lock:
                    self.counter += 1
                    number = f"XF-20261123-{self.counter:04d}"
                say(
                    f"已为您登记信访，编号 {number}，状态：已受理。"
                    "相关部门会在5个工作日内答复，请记好编号。",
                    [_b("查信访进度"), _b("查房本进度")],
                )
            else:
                say("好的，没有提交。还有什么可以帮您？", [_b("查房本进度")])
        elif text in ("查房本进度", "为什么办不了证"):
            st["want"] = "status"
            say(
                "好的。请告诉我您房子的地址（小区、楼号、单元、房号），例如“观象山庄3号楼2单元501”。"
            )
        elif ADDRESS_RE.search(text):
            say(
                "查到了：观象山庄 3号楼 2单元 501。\n项目还没有完成首次登记，卡在两个环节：\n"
                "1. 消防验收未通过（住建局负责）\n2. 开发企业欠缴土地出让金（自然资源局负责）\n"
                "按“证缴分离”政策，欠费由政府向开发企业追缴，不影响您办证。预计2027年3月前化解。",
                [_b("接下来怎么办", "/ask_next_steps"), _b("要带什么材料"), _b("我要信访")],
            )
        elif text == "/ask_next_steps":
            say(
                "目前您不需要做什么。首次登记完成后，带上身份证、购房合同和发票到不动产登记中心办理转移登记。"
            )
        elif text == "要带什么材料":
            say("办理转移登记请带：身份证、购房合同、购房发票、契税完税证明。", [_b("在哪里办")])
        elif text in ("我要信访", "转人工"):
            st["form"] = "name"
            say("好的，我来帮您登记信访，工作人员会跟进。请问您怎么称呼？")
        elif text == "慢":
            time.sleep(self.delay)
            say("让您久等了。")
        else:
            say(
                "抱歉，我没听明白。您可以问我房本办理进度、为什么办不了证、要带什么材料。",
                [_b("查房本进度"), _b("我要信访")],
            )
        return out


class _Handler(BaseHTTPRequestHandler):
    fake: FakeRasa

    def log_message(self, *_args: Any) -> None:
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/webhooks/rest/webhook":
            self.send_error(404)
            return
        if self.fake.fail_status:
            self.send_error(self.fake.fail_status)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.fake.channels.append(body.get("input_channel"))
        data = json.dumps(self.fake.reply(str(body["sender"]), str(body["message"])))
        raw = data.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a hundred residents at once: no SYN dropped by a tiny backlog
    daemon_threads = True


class FakeRasaServer:
    """Runs a FakeRasa on 127.0.0.1 and a free port in a background thread."""

    def __init__(self) -> None:
        self.fake = FakeRasa()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeRasaServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
