"""scripts/audit.sh end to end against a vulnerability service of our own (an OSV-API double on
127.0.0.1): a reported advisory fails the audit unless audit/ignore.toml covers it, a package the
service cannot answer for fails it too (--strict), and a stale ignore entry fails before pip-audit
runs. The real service is unreachable from the build machines (the script says so and skips)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(
    not (ROOT / "bot/.venv/bin/python").exists(), reason="bot/.venv not installed"
)


class FakeOSV:
    def __init__(self) -> None:
        self.vulns: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.fail_for: set[str] = set()
        self.queries: list[tuple[str, str]] = []


def _vuln(vid: str, name: str, fixed: str, aliases: list[str] | None = None) -> dict[str, object]:
    events = [{"introduced": "0"}, {"fixed": fixed}]
    return {
        "id": vid,
        "aliases": aliases or [],
        "summary": f"test advisory {vid}",
        "affected": [
            {
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }


@pytest.fixture
def osv() -> Iterator[tuple[FakeOSV, str]]:
    state = FakeOSV()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = (body["package"]["name"], body["version"])
            state.queries.append(key)
            if key[0] in state.fail_for:
                self.send_response(500)
                self.end_headers()
                return
            payload = json.dumps({"vulns": state.vulns.get(key, [])}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def _audit(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUDIT_SERVICE": "osv", "AUDIT_OSV_URL": url, "AUDIT_TIMEOUT": "5"}
    return subprocess.run(
        ["bash", "scripts/audit.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_audit_fails_on_an_advisory_not_ignored_and_passes_the_reviewed_ones(
    osv: tuple[FakeOSV, str],
) -> None:
    state, url = osv
    # Rasa's aiohttp: reviewed (by its GHSA id and by an alias only), so not a failure.
    state.vulns[("aiohttp", "3.9.5")] = [
        _vuln("GHSA-8495-4g3g-x7pr", "aiohttp", "3.10.11"),
        _vuln("PYSEC-2099-1", "aiohttp", "3.13.3", aliases=["CVE-2025-69223"]),
    ]
    ok = _audit(url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    asked = {name for name, _ in state.queries}
    assert {"fastapi", "sqlalchemy", "rasa", "aiohttp", "tensorflow"} <= asked  # both locks

    # The same advisory id on an api package is not ignored: the api lock has no ignore list.
    state.vulns[("jinja2", "3.1.6")] = [_vuln("GHSA-8495-4g3g-x7pr", "jinja2", "3.1.7")]
    # And an advisory on a bot package nobody reviewed fails too.
    state.vulns[("httpx", "0.28.1")] = [_vuln("GHSA-zzzz-zzzz-zzzz", "httpx", "0.28.2")]
    bad = _audit(url)
    assert bad.returncode != 0
    assert "jinja2" in bad.stdout and "GHSA-zzzz-zzzz-zzzz" in bad.stdout, bad.stdout


def test_audit_fails_when_a_package_cannot_be_looked_up(osv: tuple[FakeOSV, str]) -> None:
    state, url = osv
    state.fail_for.add("rasa")
    result = _audit(url)
    assert result.returncode != 0, result.stdout + result.stderr


def test_unreachable_service_is_reported_not_silently_passed() -> None:
    result = _audit("http://127.0.0.1:9/v1/query")  # discard port: nothing listens
    assert result.returncode == 0
    assert "NOT AUDITED" in result.stdout
    env = {**os.environ, "AUDIT_SERVICE": "osv", "AUDIT_OSV_URL": "http://127.0.0.1:9/v1/query"}
    required = subprocess.run(
        ["bash", "scripts/audit.sh"],
        cwd=ROOT,
        env={**env, "AUDIT_REQUIRED": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert required.returncode == 3, required.stdout + required.stderr


def test_a_stale_ignore_entry_fails_before_any_lookup(tmp_path: Path) -> None:
    text = (ROOT / "audit/ignore.toml").read_text(encoding="utf-8")
    # sentry-sdk 1.14.1 is allowed by Rasa's pin (<1.15): such an advisory must be upgraded away.
    stale = text.replace('fixed = "1.45.1"', 'fixed = "1.14.1"', 1)
    assert stale != text
    path = tmp_path / "ignore.toml"
    path.write_text(stale, encoding="utf-8")
    api_py = ROOT / "api/.venv/bin/python"
    result = subprocess.run(
        [str(api_py), "scripts/audit_ignores.py", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "rasa allows sentry-sdk 1.14.1" in result.stderr
