"""The client's address behind a reverse proxy, believed only from the proxies we configured.

Uvicorn's own proxy-headers middleware trusts `X-Forwarded-For` from 127.0.0.1 by default, so
anyone on the host (or anything that reaches the api through a local port) could rotate the
header and dodge the per-IP limits. Every launcher starts uvicorn with `--no-proxy-headers`
(checked by tests/api/test_forwarded.py) and this middleware does the job instead, from
`TRUSTED_PROXIES` (comma-separated addresses or networks; empty: trust nobody).

The client is the right-most address in `X-Forwarded-For` that is not itself a trusted proxy
(addresses further left were written by the client and prove nothing).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import settings

log = logging.getLogger("app.proxies")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str | Iterable[str]) -> list[Network]:
    """`"10.0.0.2, 172.28.0.0/24"` → networks; a bad entry is a start-up error, never ignored."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    networks: list[Network] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: not an address or network: {item!r}") from exc
    return networks


def _is_trusted(host: str, networks: list[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_from_forwarded(peer: str, forwarded_for: str, networks: list[Network]) -> str:
    """The client's address: `peer` unless it is a trusted proxy, then the right-most
    untrusted hop of `forwarded_for` (or the left-most when every hop is a proxy)."""
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer  # garbage from the client: the proxy's own address, not a forgery
    return hops[0] if hops else peer


class TrustedProxies:
    """ASGI middleware: `scope["client"]` and `scope["scheme"]` from the forwarded headers of a
    trusted proxy only."""

    def __init__(self, app: ASGIApp, trusted: str | Iterable[str] | None = None) -> None:
        self.app = app
        self.networks = parse_networks(settings.trusted_proxies if trusted is None else trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.networks and client:
            peer = str(client[0])
            if _is_trusted(peer, self.networks):
                headers = dict(scope.get("headers") or [])
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                if forwarded:
                    scope = dict(scope)
                    scope["client"] = (client_from_forwarded(peer, forwarded, self.networks), 0)
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
                if proto in ("http", "https", "ws", "wss"):
                    scope = dict(scope)
                    if scope["type"] == "websocket":
                        proto = "wss" if proto in ("https", "wss") else "ws"
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
