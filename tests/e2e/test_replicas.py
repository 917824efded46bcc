"""Two Rasa replicas on the production stores serve one resident's conversation.

One api (on a PostgreSQL database of its own, demo ledger) and one action server, and TWO Rasa
processes on the same model, pulled from the api's model server, both started from
bot/endpoints.prod.yml itself: the RedactingTrackerStore wrapping the SQL tracker store on the
real PostgreSQL (a database this module creates and drops) and the Redis lock store. The only
change to that file is the lock store's Redis db number (production's `db: 1` is swapped for a
db of this test's own, so no other test's Redis data is touched); everything else comes in
through the same ${VAR}s docker-compose sets.

The resident's turns go alternately to replica A and replica B (REST channel, one sender): the
home looked up on A is remembered on B, the petition form asks its next question on whichever
replica gets the answer. Then the worst moment for a crash: the resident confirms on A, the
action server files the petition, and A is SIGKILLed before it gets the answer back (a proxy
between A and the action server holds it), still holding the conversation's lock in Redis and
with nothing of that turn saved. The resident confirms again on B: B waits for the dead
replica's lock to expire, the action files with the same idempotency key, and the api has the
petition exactly once, under the number B gives. The tracker's rows in PostgreSQL hold none of
the resident's phone, ID number or name in the clear.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest
import redis
from e2e_stack import REPO, Stack, kill_server, running_stack, texts

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PG_HOST = os.environ.get("REPLICAS_PG_HOST", "127.0.0.1")
REDIS_HOST = os.environ.get("REPLICAS_REDIS_HOST", "127.0.0.1")
REDIS_DB = int(os.environ.get("REPLICAS_REDIS_DB", "12"))  # production uses db 1
# Production keeps Rasa's default ticket lifetime (60 s): a turn cut off by a dead replica holds
# the conversation for up to a minute. Shorter here so the test waits less; the same mechanism.
LOCK_LIFETIME = 20
PETITION_NUMBER = re.compile(r"XF-\d{8}-\d{4}")

NAME = "郑淑华"
PHONE = "13687654321"
ID_NUMBER = "37020219750315002X"
STORY = f"交房六年了房本还没办下来，开发商说消防验收没过。我的身份证号{ID_NUMBER}，盼回复"


def _admin() -> Any:
    conn = psycopg2.connect(host=PG_HOST, port=5432, user="postgres", dbname="test")
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def databases() -> Iterator[dict[str, str]]:
    """Two fresh PostgreSQL databases (api, tracker store) and a clean Redis db; dropped after."""
    tag = uuid.uuid4().hex[:8]
    names = {"api": f"fangben_replicas_{tag}_api", "tracker": f"fangben_replicas_{tag}_tracker"}
    try:
        admin = _admin()
        redis.Redis(host=REDIS_HOST, port=6379, db=REDIS_DB).ping()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL and Redis are required under CI: {exc}")
        pytest.skip(f"PostgreSQL or Redis unreachable: {exc}")
    try:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f'CREATE DATABASE "{name}"')
        yield names
    finally:
        with admin.cursor() as cur:
            for name in names.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class HoldingProxy:
    """An HTTP proxy between replica A and the action server. It forwards every call; once
    `arm()`ed, the first answer carrying a petition number is kept from A (A waits for it until
    it dies) and `held` is set."""

    def __init__(self) -> None:
        self.upstream = ""
        self.armed = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_answer: dict[str, Any] = {}
        self.calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.calls += 1
                answer = httpx.post(
                    proxy.upstream,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=120,
                )
                if proxy.armed.is_set() and PETITION_NUMBER.search(answer.text):
                    proxy.held_answer = answer.json()
                    proxy.held.set()
                    proxy.release.wait(120)  # A is killed meanwhile: nobody reads an answer
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _prod_endpoints(workdir: Path) -> Path:
    """bot/endpoints.prod.yml with only the lock store's Redis db number changed."""
    text = (REPO / "bot" / "endpoints.prod.yml").read_text(encoding="utf-8")
    lock = text.index("\nlock_store:")
    end = text.find("\n\n", lock)
    end = len(text) if end < 0 else end
    section = text[lock:end]
    assert section.count("\n  db: 1\n") + section.endswith("\n  db: 1") == 1, section
    section = re.sub(r"\n  db: 1(?=\n|$)", f"\n  db: {REDIS_DB}", section)
    path = workdir / "endpoints.replicas.yml"
    path.write_text(text[:lock] + section + text[end:], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def replicas(
    databases: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, HoldingProxy]]:
    """api on PostgreSQL + action server + Rasa replicas A and B on the production stores."""
    endpoints = _prod_endpoints(tmp_path_factory.mktemp("replicas"))
    proxy = HoldingProxy()
    store_env = {  # what docker-compose gives the rasa service
        "TRACKER_DB_HOST": PG_HOST,
        "TRACKER_DB_NAME": databases["tracker"],
        "TRACKER_DB_USER": "postgres",
        "TRACKER_DB_PASSWORD": "unused-trust-auth",
        "LOCK_STORE_HOST": REDIS_HOST,
        "TICKET_LOCK_LIFETIME": str(LOCK_LIFETIME),
    }

    def replica_env(index: int, stack: Stack) -> dict[str, str]:
        proxy.upstream = f"http://127.0.0.1:{stack.actions_port}/webhook"
        # A reaches the action server through the proxy, B directly.
        return {**store_env, **({"ACTION_SERVER_URL": proxy.url} if index == 0 else {})}

    started = time.monotonic()
    try:
        with running_stack(
            database_url=f"postgresql+psycopg://postgres@{PG_HOST}:5432/{databases['api']}",
            endpoints=endpoints,
            model_server=True,
            replicas=2,
            replica_env=replica_env,
        ) as stack:
            stack.timings["up"] = time.monotonic() - started
            yield stack, proxy
    finally:
        proxy.close()
        redis.Redis(host=REDIS_HOST, port=6379, db=REDIS_DB).flushdb()


def _api_rows(database: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(host=PG_HOST, port=5432, user="postgres", dbname=database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _rss_mb(stack: Stack, name: str) -> float:
    """Resident memory of one server's process group leader (the Rasa process), in MB."""
    status = Path(f"/proc/{stack.procs[name].pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def test_one_conversation_across_two_replicas_survives_a_killed_one(
    replicas: tuple[Stack, HoldingProxy], databases: dict[str, str]
) -> None:
    stack, proxy = replicas
    sender = f"e2e-replicas-{uuid.uuid4().hex[:8]}"
    a, b = 0, 1
    client = httpx.Client(timeout=120)
    timings = dict(stack.timings)
    print(f"RSS MB: A {_rss_mb(stack, 'rasa'):.0f}, B {_rss_mb(stack, 'rasa-2'):.0f}")

    # A looks the home up; B starts the petition; the form goes on on whichever replica answers.
    status = texts(stack.say(sender, "观象山庄3号楼2单元501的房本啥时候能办", client, replica=a))
    assert "观象山庄" in status and "首次登记" in status, status
    ask = texts(stack.say(sender, "我要登记信访", client, replica=b))
    assert any(w in ask for w in ("姓名", "名字", "称呼")), ask
    ask = texts(stack.say(sender, NAME, client, replica=a))
    assert any(w in ask for w in ("手机", "电话")), ask  # A knows B started the form
    ask = texts(stack.say(sender, PHONE, client, replica=b))
    # The home found on A is not asked again on B: the next question is what happened.
    assert any(w in ask for w in ("情况", "问题", "描述", "说说", "反映", "诉求")), ask
    assert not any(w in ask for w in ("地址", "哪个小区", "住哪")), ask
    readback = texts(stack.say(sender, STORY, client, replica=a))
    masked_name = NAME[0] + "*" * (len(NAME) - 1)
    for shown in (masked_name, PHONE[:3] + "****" + PHONE[-4:], "观象山庄", "同意"):
        assert shown in readback, readback
    assert NAME not in readback and PHONE not in readback, readback
    assert proxy.calls >= 3  # A's turns really went through the proxy to the action server

    # The resident confirms on A. The action server files the petition; A never gets the answer.
    proxy.armed.set()
    outcome: dict[str, Any] = {}

    def confirm_on_a() -> None:
        try:
            outcome["replies"] = stack.say(sender, "同意", replica=a)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    asked_a = time.monotonic()
    on_a = threading.Thread(target=confirm_on_a, daemon=True)
    on_a.start()
    assert proxy.held.wait(120), "the action server never answered A's confirmation"
    number = PETITION_NUMBER.search(json.dumps(proxy.held_answer, ensure_ascii=False)).group(0)  # type: ignore[union-attr]
    rows = _api_rows(databases["api"], "SELECT number FROM petition WHERE phone = %s", PHONE)
    assert rows == [(number,)], rows  # filed by A's turn, before the crash
    lock_key = f"fangben:lock:{sender}"
    assert redis.Redis(host=REDIS_HOST, port=6379, db=REDIS_DB).exists(lock_key)  # A holds it
    kill_server(stack, "rasa")  # SIGKILL, holding the lock, nothing of the turn saved
    on_a.join(30)
    assert "replies" not in outcome, outcome  # the resident saw no answer from A

    # The resident taps 同意 again; the load balancer sends it to B.
    asked_b = time.monotonic()
    done = texts(stack.say(sender, "同意", client, replica=b))
    waited = time.monotonic() - asked_b
    timings["b_waited_for_lock"] = waited
    match = PETITION_NUMBER.search(done)
    assert match, done
    assert match.group(0) == number, (done, number)
    # B waited for the dead replica's ticket in Redis to expire (a lock of its own would not).
    assert waited >= LOCK_LIFETIME - (asked_b - asked_a) - 2, (waited, asked_b - asked_a)
    rows = _api_rows(
        databases["api"],
        "SELECT number, person_name, status FROM petition WHERE phone = %s OR person_name = %s",
        PHONE,
        NAME,
    )
    assert rows == [(number, NAME, "accepted")], rows  # exactly once

    # B goes on with the conversation: the filed petition is remembered.
    check = texts(stack.say(sender, "我的信访怎么样了", client, replica=b))
    assert number in check and "已受理" in check, check
    client.close()

    # The tracker store on PostgreSQL: the conversation is there, no personal data in the clear.
    events = _api_rows(
        databases["tracker"],
        "SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id",
        sender,
    )
    # Seven turns stored: A's cut-off confirmation left nothing, B's retry is there once.
    assert sum(1 for kind, _ in events if kind == "user") == 7, [k for k, _ in events]
    stored = "\n".join(data for _, data in events)
    stored_unescaped = json.dumps([json.loads(data) for _, data in events], ensure_ascii=False)
    for secret in (PHONE, ID_NUMBER, NAME):
        assert secret not in stored and secret not in stored_unescaped, secret
    assert "观象山庄" in stored_unescaped  # the rows are the conversation, only masked
    print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
