"""Web chat through the api: signed conversations, transcript, proxy to a (fake) Rasa server."""

from __future__ import annotations

import socket

import pytest
from fake_rasa import FakeRasa
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.chat import service as chat_service
from app.chat.models import ChatMessage
from app.core.config import settings

H = {"X-Chat-Client": "web"}


def open_chat(client: TestClient) -> str:
    """Load the page like a browser and return the issued cookie value."""
    r = client.get("/chat")
    assert r.status_code == 200
    token = client.cookies.get(chat_service.COOKIE_NAME)
    assert token
    return token


def say(client: TestClient, text: str, payload: str | None = None) -> dict:
    body = {"text": text} if payload is None else {"text": text, "payload": payload}
    r = client.post("/chat/api/messages", json=body, headers=H)
    assert r.status_code == 200, r.text
    return r.json()


def test_page_issues_signed_httponly_cookie_and_strict_headers(client: TestClient) -> None:
    r = client.get("/chat")
    assert r.status_code == 200
    assert "房本助手" in r.text
    for chip in (
        "查房本进度",
        "为什么办不了证",
        "要带什么材料",
        "我要信访",
        "查信访进度",
        "转人工",
    ):
        assert chip in r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/chat" in cookie
    assert "script-src 'self'" in r.headers["content-security-policy"]
    token = client.cookies.get(chat_service.COOKIE_NAME)
    conversation_id = chat_service.read_conversation(token)
    # The cookie is the id plus a signature; reloading keeps the same cookie.
    assert token.startswith(conversation_id + ".")
    r2 = client.get("/chat")
    assert "set-cookie" not in r2.headers
    assert client.cookies.get(chat_service.COOKIE_NAME) == token
    assert client.get("/chat/static/chat.js").status_code == 200


def test_conversation_and_history_survive_reload(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    first = say(client, "查房本进度")
    assert "地址" in first["replies"][0]["text"]
    second = say(client, "观象山庄3号楼2单元501")
    reply = second["replies"][0]
    assert "消防验收" in reply["text"]
    assert [b["title"] for b in reply["buttons"]] == ["接下来怎么办", "要带什么材料", "我要信访"]
    # "Reload": the page again, then the history.
    open_chat(client)
    history = client.get("/chat/api/history", headers=H).json()["messages"]
    assert [(m["role"], m["text"][:6]) for m in history] == [
        ("user", "查房本进度"),
        ("bot", first["replies"][0]["text"][:6]),
        ("user", "观象山庄3号"),
        ("bot", "查到了：观象"),
    ]
    assert history[-1]["buttons"][0]["title"] == "接下来怎么办"
    # The chip from the reloaded history still works.
    say(client, "接下来怎么办", payload=history[-1]["buttons"][0]["payload"])
    assert rasa.received[-1][1] == "/ask_next_steps"
    # Petitions filed from here are recorded as 网页聊天: the bot reads the declared channel.
    assert set(rasa.channels) == {"webchat"}
    assert all(m["at"] for m in history)
    # The fake saw one stable sender id that is neither the cookie nor the conversation id.
    senders = {s for s, _ in rasa.received}
    assert len(senders) == 1
    token = client.cookies.get(chat_service.COOKIE_NAME)
    sender = senders.pop()
    assert sender.startswith("web-")
    assert chat_service.read_conversation(token) not in sender


def test_two_conversations_never_see_each_other(
    client: TestClient, rasa: FakeRasa, db: Session
) -> None:
    from app.main import app

    open_chat(client)
    say(client, "我要信访")
    say(client, "王建国")
    with TestClient(app) as other:
        open_chat(other)
        assert other.get("/chat/api/history", headers=H).json()["messages"] == []
        say(other, "你好")
        mine = [m["text"] for m in client.get("/chat/api/history", headers=H).json()["messages"]]
        assert "你好" not in mine and "王建国" in mine
    assert len({s for s, _ in rasa.received}) == 2
    # The table stores keyed digests, never the conversation ids themselves.
    token = client.cookies.get(chat_service.COOKIE_NAME)
    cid = chat_service.read_conversation(token)
    keys = set(db.scalars(select(ChatMessage.conversation)).all())
    assert chat_service.transcript_key(cid) in keys
    assert all(cid not in k for k in keys)


@pytest.mark.parametrize(
    "forge",
    ["missing", "unsigned", "tampered", "other_secret", "swapped_signature", "garbage"],
)
def test_forged_or_foreign_conversation_ids_are_refused(
    client: TestClient, rasa: FakeRasa, forge: str
) -> None:
    from app.main import app

    victim_token = open_chat(client)
    say(client, "观象山庄3号楼2单元501")
    victim_id = chat_service.read_conversation(victim_token)
    with TestClient(app) as attacker:
        own = open_chat(attacker)
        own_id, own_sig = own.rsplit(".", 1)[0], own.split(".", 1)[1]
        forged = {
            "missing": None,
            "unsigned": victim_id,
            "tampered": victim_token[:-2] + ("AA" if not victim_token.endswith("AA") else "BB"),
            "other_secret": TimestampSigner("not-the-key", salt="fangben.chat.conversation")
            .sign(victim_id)
            .decode(),
            "swapped_signature": victim_id + "." + own_sig,
            "garbage": "../../etc/passwd",
        }[forge]
        attacker.cookies.clear()
        forged_h = dict(H)
        if forged is not None:
            forged_h["Cookie"] = f"{chat_service.COOKIE_NAME}={forged}"
        r = attacker.get("/chat/api/history", headers=forged_h)
        assert r.status_code == 403
        assert r.json() == {
            "code": "bad_conversation",
            "message": "会话已失效，请刷新页面重新开始。",
        }
        n_before = len(rasa.received)
        w = attacker.post("/chat/api/messages", json={"text": "我要信访"}, headers=forged_h)
        assert w.status_code == 403
        assert len(rasa.received) == n_before
        # Loading the page with a forged cookie starts a fresh, empty conversation.
        page = attacker.get("/chat", headers={"Cookie": forged_h.get("Cookie", "")})
        assert chat_service.COOKIE_NAME in page.headers["set-cookie"]
        fresh = attacker.cookies.get(chat_service.COOKIE_NAME)
        assert fresh not in (forged, victim_token) and own_id
        assert attacker.get("/chat/api/history", headers=H).json()["messages"] == []
    assert len(client.get("/chat/api/history", headers=H).json()["messages"]) == 2


def test_calls_without_the_page_header_are_refused(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    r = client.post("/chat/api/messages", json={"text": "你好"})
    assert r.status_code == 403
    assert rasa.received == []


def test_typed_slash_never_reaches_rasa_as_an_intent(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    say(client, "/restart")
    say(client, "  /affirm")
    # A payload the bot never offered is treated as typed text.
    say(client, "同意", payload="/affirm")
    assert [m for _, m in rasa.received] == ["／restart", "／affirm", "同意"]
    assert not any(m.startswith("/") for _, m in rasa.received)


def test_chip_tap_sends_the_offered_payload(client: TestClient, rasa: FakeRasa) -> None:
    from app.main import app

    open_chat(client)
    offered = say(client, "观象山庄3号楼2单元501")["replies"][0]["buttons"]
    sealed = offered[0]["payload"]
    assert "/ask_next_steps" not in sealed  # the browser gets a sealed token, not an intent
    out = say(client, "随便写的标题", payload=sealed)
    assert rasa.received[-1][1] == "/ask_next_steps"
    assert out["user"]["text"] == "接下来怎么办"  # the offered title, not what was sent
    assert "首次登记完成后" in out["replies"][0]["text"]
    # A tampered token, or a chip offered to another conversation, is plain typed text.
    say(client, "接下来怎么办", payload=sealed[:-4] + "AAAA")
    assert rasa.received[-1][1] == "接下来怎么办"
    with TestClient(app) as other:
        open_chat(other)
        say(other, "接下来怎么办", payload=sealed)
        assert rasa.received[-1][1] == "接下来怎么办"


def test_petition_through_the_chat_masks_personal_data_in_the_transcript(
    client: TestClient, rasa: FakeRasa, db: Session
) -> None:
    open_chat(client)
    say(client, "我要信访")
    say(client, "王建国")
    out = say(client, "电话13812345678，身份证110101199003071234")
    assert out["user"]["text"] == "电话138****5678，身份证**************1234"
    # The bot itself got the clear text (it needs it), the stored transcript did not.
    assert rasa.received[-1][1] == "电话13812345678，身份证110101199003071234"
    consent = say(client, "观象山庄一直办不了证，开发商找不到人")["replies"][0]
    assert [b["title"] for b in consent["buttons"]] == ["同意", "不同意"]
    done = say(client, "同意", payload=consent["buttons"][0]["payload"])["replies"][0]["text"]
    assert rasa.received[-1][1] == "/affirm"
    assert "XF-20261123-" in done
    stored = " ".join(db.scalars(select(ChatMessage.text)).all())
    assert "13812345678" not in stored and "110101199003071234" not in stored
    assert "138****5678" in stored


def test_length_cap_and_empty_messages(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    r = client.post("/chat/api/messages", json={"text": "房" * 501}, headers=H)
    assert r.status_code == 422
    assert r.json()["code"] == "too_long" and "500" in r.json()["message"]
    assert client.post("/chat/api/messages", json={"text": "   "}, headers=H).status_code == 422
    assert rasa.received == []
    say(client, "房" * 500)
    assert len(rasa.received[-1][1]) == 500
    huge = client.post("/chat/api/messages", json={"text": "房" * 5000}, headers=H)
    assert huge.status_code in (413, 422)


def test_rate_limit_per_conversation(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    per_conversation = settings.chat_rate_per_conversation
    assert per_conversation == 20  # the default a resident meets
    for _ in range(per_conversation):
        say(client, "你好")
    r = client.post("/chat/api/messages", json={"text": "你好"}, headers=H)
    assert r.status_code == 429
    assert r.json()["message"] == chat_service.RATE_LIMITED_MESSAGE
    assert len(rasa.received) == per_conversation


def test_rate_limit_per_ip(
    client: TestClient, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.main import app

    monkeypatch.setattr(settings, "chat_rate_per_ip", 3)
    for i in range(3):
        with TestClient(app) as c:
            open_chat(c)
            say(c, f"你好{i}")
    with TestClient(app) as c:
        open_chat(c)
        r = c.post("/chat/api/messages", json={"text": "你好"}, headers=H)
        assert r.status_code == 429 and "稍等" in r.json()["message"]
    assert len(rasa.received) == 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_rasa_down_gives_a_friendly_message_and_stores_nothing(
    client: TestClient, rasa: FakeRasa, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_chat(client)
    monkeypatch.setattr(settings, "rasa_url", f"http://127.0.0.1:{_closed_port()}")
    r = client.post("/chat/api/messages", json={"text": "查房本进度"}, headers=H)
    assert r.status_code == 503
    assert r.json() == {"code": "bot_unavailable", "message": chat_service.BOT_DOWN_MESSAGE}
    assert client.get("/chat/api/history", headers=H).json()["messages"] == []


def test_rasa_error_status_gives_a_friendly_message(client: TestClient, rasa: FakeRasa) -> None:
    open_chat(client)
    rasa.fail_status = 500
    r = client.post("/chat/api/messages", json={"text": "查房本进度"}, headers=H)
    assert r.status_code == 503 and r.json()["message"] == chat_service.BOT_DOWN_MESSAGE


def test_extra_fields_such_as_a_chosen_sender_are_refused(
    client: TestClient, rasa: FakeRasa
) -> None:
    open_chat(client)
    r = client.post(
        "/chat/api/messages", json={"text": "你好", "sender": "web-someone-else"}, headers=H
    )
    assert r.status_code == 422
    assert rasa.received == []
