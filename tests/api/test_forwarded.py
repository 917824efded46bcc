"""Forwarded headers are believed only from configured proxies (issue 13).

Before: uvicorn's own proxy-headers middleware trusted `X-Forwarded-For` from 127.0.0.1, so a
script on the host rotated the header and never met the per-IP lookup limit. Now uvicorn runs
with `--no-proxy-headers` everywhere and app/core/proxies.py believes TRUSTED_PROXIES only."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from live_api import PRODUCTION_FLAGS, live_api

from app.core.proxies import TrustedProxies, client_from_forwarded, parse_networks

REPO = Path(__file__).resolve().parents[2]
PROXIES = parse_networks("10.0.0.2, 172.28.0.0/24, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy: the header is the client's
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        # The client wrote the left part; the proxy appended the address it saw.
        ("10.0.0.2", "1.1.1.1, 2.2.2.2, 198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "198.51.100.7, 172.28.0.5", "198.51.100.7"),  # two proxies in a row
        ("10.0.0.2", "172.28.0.9", "172.28.0.9"),  # only proxies: the first of them
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("10.0.0.3", "198.51.100.7", "10.0.0.3"),
    ],
)
def test_client_address(peer: str, forwarded: str, client: str) -> None:
    assert client_from_forwarded(peer, forwarded, PROXIES) == client


def test_nobody_is_trusted_by_default() -> None:
    assert client_from_forwarded("127.0.0.1", "1.2.3.4", parse_networks("")) == "127.0.0.1"


def test_a_bad_entry_is_a_start_up_error() -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        parse_networks("10.0.0.2, proxy.local")


async def _seen(peer: str, headers: dict[str, str], trusted: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(client=scope["client"][0], scheme=scope["scheme"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    transport = httpx.ASGITransport(app=TrustedProxies(app, trusted), client=(peer, 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        await client.get("/healthz", headers=headers)
    return seen


def test_middleware_rewrites_client_and_scheme_for_a_trusted_proxy() -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https"}
    assert asyncio.run(_seen("10.0.0.2", headers, "10.0.0.2")) == {
        "client": "198.51.100.7",
        "scheme": "https",
    }
    assert asyncio.run(_seen("10.0.0.9", headers, "10.0.0.2")) == {
        "client": "10.0.0.9",
        "scheme": "http",
    }
    assert asyncio.run(_seen("10.0.0.2", headers, "")) == {"client": "10.0.0.2", "scheme": "http"}


def _lookups(base: str, n: int) -> list[int]:
    """`n` lookups from this host, each claiming another client address."""
    codes = []
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(n):
            headers = {"X-Forwarded-For": f"198.51.100.{i + 1}"}
            codes.append(client.post("/api/v1/lookup", json={}, headers=headers).status_code)
    return codes


def test_rotating_x_forwarded_for_does_not_dodge_the_ip_limit(tmp_path: Path) -> None:
    """The real process as launched in production: 3 lookups per IP allowed, the 4th is 429
    whatever address the header claims; with the host configured as a proxy, each claimed
    address has its own budget (so the setting is what decides)."""
    db = f"sqlite:///{tmp_path / 'api.db'}"
    env = {"LOOKUP_RATE_PER_IP": "3", "ENVIRONMENT": "test"}
    with live_api(db, tmp_path / "api.log", env=env, flags=PRODUCTION_FLAGS) as base:
        codes = _lookups(base, 5)
    assert codes[:3] == [422, 422, 422] and codes[3:] == [429, 429], codes
    env["TRUSTED_PROXIES"] = "127.0.0.1"
    with live_api(db, tmp_path / "api2.log", env=env, flags=PRODUCTION_FLAGS) as base:
        assert _lookups(base, 5) == [422] * 5


def _commands() -> list[str]:
    """Every command line in the repository's launchers that starts the api's uvicorn."""
    texts = [
        (REPO / "scripts" / "run.sh").read_text(),
        (REPO / "api" / "Dockerfile").read_text(),
        (REPO / "bot" / "trainer" / "sandbox.py").read_text(),
    ]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        command = service.get("command")
        texts.append(" ".join(command) if isinstance(command, list) else str(command or ""))
    found = []
    for text in texts:
        joined = text.replace("\\\n", " ")
        # A shell line, or a Python argv list spread over a few lines.
        for match in re.finditer(r"uvicorn.{0,20}app\.main:app.{0,160}", joined, re.S):
            found.append(match.group(0).split("&&")[0].split("start(")[0])
    return found


def test_every_launcher_turns_uvicorns_proxy_headers_off() -> None:
    commands = _commands()
    assert len(commands) >= 5, commands  # run.sh, Dockerfile, sandbox, compose api + sandbox-api
    for command in commands:
        assert "--no-proxy-headers" in command, command
