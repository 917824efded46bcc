"""A TCP proxy a test controls, put between the api and PostgreSQL or Redis to inject faults.

    with FaultProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/db"
        proxy.cut()            # live connections reset, new ones reset right after accept
        proxy.slow(300)        # every chunk, both ways, held 300 ms before it is forwarded
        proxy.blackhole()      # connections accepted, nothing forwarded either way
        proxy.pass_()          # back to forwarding

Modes switch at runtime from any thread. `cut` resets (RST, SO_LINGER 0) every live connection
on both sides, as a database that died or a firewall that dropped the flow would look to the
client; while cut, a new connection is accepted and reset at once (the peer sees "connection
reset" or "server closed the connection"). `blackhole` stops forwarding on live connections
(bytes stay in the socket buffers, so a return to `pass` delivers them late, not lost) and
accepts new ones without ever opening the upstream; those are reset when the mode changes.
`close()` stops the listener and resets everything.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["pass", "cut", "slow", "blackhole"]
_POLL = 0.05  # seconds a pump waits before looking at the mode again


def _reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0), never a graceful FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and, unless it was accepted in a blackhole, its upstream."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)


class FaultProxy:
    """Listens on 127.0.0.1 (a free port unless given) and forwards to `upstream`."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self._mode: Mode = "pass"
        self._delay = 0.0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(128)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0  # connections accepted since start (any mode)
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._thread.start()

    # -- control ---------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def live(self) -> int:
        """Connections open right now."""
        with self._lock:
            return sum(1 for link in self._links if not link.closed.is_set())

    def set_mode(self, mode: Mode, delay_ms: float | None = None) -> None:
        """Switch mode; `delay_ms` is the per-chunk delay of `slow`."""
        if mode not in ("pass", "cut", "slow", "blackhole"):
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            previous = self._mode
            if delay_ms is not None:
                self._delay = delay_ms / 1000
            self._mode = mode
            links = list(self._links)
        if mode == "cut":
            for link in links:
                link.close()
        elif previous == "blackhole":
            for link in links:
                if link.upstream is None:  # accepted in the blackhole: never had an upstream
                    link.close()

    def pass_(self) -> None:
        self.set_mode("pass")

    def cut(self) -> None:
        self.set_mode("cut")

    def slow(self, delay_ms: float) -> None:
        self.set_mode("slow", delay_ms)

    def blackhole(self) -> None:
        self.set_mode("blackhole")

    def close(self) -> None:
        """Stop accepting, reset every connection, wait for the listener thread."""
        self._stopping.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self._links)
            self._links.clear()
        for link in links:
            link.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- work --------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == "cut":
                _reset(client)
                continue
            upstream: socket.socket | None = None
            if mode != "blackhole":
                try:
                    upstream = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    _reset(client)
                    continue
            link = _Link(client, upstream)
            with self._lock:
                if self._mode == "cut":  # cut while the upstream was being opened
                    link.close()
                    continue
                self._links.add(link)
            if upstream is not None:
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(link, src, dst), daemon=True).start()

    def _holding(self) -> bool:
        return self._mode == "blackhole"

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
        try:
            src.settimeout(_POLL)
            while not link.closed.is_set() and not self._stopping.is_set():
                if self._holding():
                    time.sleep(_POLL)  # hold: nothing read, nothing forwarded
                    continue
                try:
                    chunk = src.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                if self._mode == "slow" and self._delay > 0:
                    time.sleep(self._delay)
                while self._holding() and not link.closed.is_set():
                    time.sleep(_POLL)
                if link.closed.is_set():
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side ended: end the other the same way (a FIN stays a FIN for the peer
            # unless the link was cut, which already reset both).
            if not link.closed.is_set():
                link.closed.set()
                for sock in (link.client, link.upstream):
                    if sock is not None:
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                        with contextlib.suppress(OSError):
                            sock.close()
            with self._lock:
                self._links.discard(link)
