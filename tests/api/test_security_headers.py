"""Staff pages and the staff API send security headers (issue 13): a strict CSP without
framing, nosniff, no-referrer, and no-store (a shared office computer keeps no copy of a
case); static files may be cached; the residents' side is left as it is."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from staff.staffkit import make_user
from staff.test_staff_auth import console_login

from app.core.edge import CONSOLE_CSP


def _csp(value: str) -> dict[str, str]:
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in value.split(";") if part.strip()
    }


def test_console_pages_and_the_staff_api_send_the_headers(client: TestClient, db: Session) -> None:
    user = make_user(db, "clerk")
    db.commit()
    login = client.get("/console/login")
    console_login(client, user.username)
    page = client.get("/console/petitions")
    api = client.get("/api/v1/staff/petitions")
    for response in (login, page, api):
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        csp = _csp(headers["content-security-policy"])
        assert csp["frame-ancestors"] == "'none'" and csp["script-src"] == "'self'"
        assert "unsafe-inline" not in headers["content-security-policy"]
    # The pages themselves hold nothing the policy would block: no inline script or style.
    for html in (login.text, page.text):
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html)
    static = client.get("/console/static/console.css")
    assert static.status_code == 200 and "no-store" not in static.headers.get("cache-control", "")
    assert static.headers["x-content-type-options"] == "nosniff"


def test_the_residents_side_is_unchanged(client: TestClient) -> None:
    """The web chat and the public API are not given the console's policy."""
    for path in ("/healthz", "/api/v1/projects"):
        headers = client.get(path).headers
        assert "content-security-policy" not in headers and "x-frame-options" not in headers


def test_the_policy_is_strict() -> None:
    csp = _csp(CONSOLE_CSP)
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'" and csp["form-action"] == "'self'"
