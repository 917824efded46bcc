"""Staff authentication: argon2, bearer tokens, console sessions, CSRF, rate limit, demo seed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select
from staff.staffkit import PASSWORD, make_petition, make_user

from app.core.database import session_scope, utcnow
from app.staff import cli
from app.staff import service as staff_service
from app.staff.auth import SESSION_COOKIE
from app.staff.models import StaffSession, StaffUser


def console_login(client, username: str, password: str = PASSWORD, next_url: str = "/console"):
    """Log in through the console form; returns the POST response (not followed)."""
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_url},
        follow_redirects=False,
    )


def page_csrf(html: str) -> str:
    """The CSRF token in a console page's forms."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_passwords_are_argon2(db):
    """Accounts store an argon2id hash, never the password."""
    user = staff_service.create_user(db=db, username="li.clerk", password=PASSWORD, role="clerk")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert staff_service.authenticate(db=db, username="li.clerk", password=PASSWORD) is user
    assert staff_service.authenticate(db=db, username="li.clerk", password="wrong-one!!") is None


def test_weak_password_and_officer_without_department_are_refused(db):
    """Short passwords and officers without a department are refused with Chinese messages."""
    from app.core.errors import AppError

    with pytest.raises(AppError) as err:
        staff_service.create_user(db=db, username="short", password="123", role="clerk")
    assert "密码至少" in err.value.message
    with pytest.raises(AppError) as err:
        staff_service.create_user(db=db, username="wang", password=PASSWORD, role="officer")
    assert "部门" in err.value.message


def test_token_endpoint(client, db):
    """OAuth2 password form → bearer token that opens the staff API; bad passwords get 401."""
    user = make_user(db, "clerk")
    db.commit()
    r = client.post("/api/v1/auth/token", data={"username": user.username, "password": "nope"})
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    r = client.post("/api/v1/auth/token", data={"username": user.username, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/api/v1/staff/me", headers=headers).json()["username"] == user.username


def test_disabled_account_cannot_log_in_and_loses_tokens(client, db):
    """Disabling an account ends its tokens and refuses new logins."""
    admin, clerk = make_user(db, "admin"), make_user(db, "clerk")
    db.commit()
    tok = client.post("/api/v1/auth/token", data={"username": clerk.username, "password": PASSWORD})
    clerk_headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    tok = client.post("/api/v1/auth/token", data={"username": admin.username, "password": PASSWORD})
    admin_headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    r = client.patch(
        f"/api/v1/staff/users/{clerk.username}", json={"active": False}, headers=admin_headers
    )
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/staff/me", headers=clerk_headers).status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": clerk.username, "password": PASSWORD})
    assert r.status_code == 401


def _token(client, username: str, password: str):
    return client.post("/api/v1/auth/token", data={"username": username, "password": password})


@pytest.fixture
def later(monkeypatch):
    """Move the limiter's clocks forward: `later(31)`."""
    from app.core.ratelimit import limiter

    now = [1000.0]
    start = limiter.clock()
    monkeypatch.setattr(limiter, "monotonic", lambda: now[0])
    # The per-minute windows move with it (their clock is pinned by tests/api/conftest.py).
    monkeypatch.setattr(limiter, "clock", lambda: start + now[0] - 1000.0)

    def move(seconds: float) -> None:
        now[0] += seconds

    return move


def test_failed_logins_back_off_per_account_and_address(client, db, later):
    """Five wrong passwords from one address: the next attempt there waits 30 s (429 with
    Retry-After, in Chinese), even with the right password; each further failure doubles the
    wait; the right password after the wait gets in and clears the count."""
    user = make_user(db, "clerk")
    db.commit()
    for _ in range(5):
        assert _token(client, user.username, "x").status_code == 401
    r = _token(client, user.username, PASSWORD)
    assert r.status_code == 429 and r.json()["code"] == "login_backoff"
    assert r.headers["Retry-After"] == "30" and "30 秒后再试" in r.json()["message"]
    r = console_login(client, user.username)
    assert r.status_code == 429 and "密码错误次数太多" in r.text and r.headers["Retry-After"]
    later(31)
    assert _token(client, user.username, "x").status_code == 401  # the sixth failure
    r = _token(client, user.username, PASSWORD)
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    later(61)
    assert _token(client, user.username, PASSWORD).status_code == 200
    for _ in range(4):  # counting starts again from nothing
        assert _token(client, user.username, "x").status_code == 401
    assert _token(client, user.username, PASSWORD).status_code == 200


def test_a_stranger_cannot_lock_an_account(client, db):
    """Issue 13: five wrong logins by anyone locked the account out, the right password
    included. Now a stranger's failures from elsewhere never touch the owner's login."""
    from fastapi.testclient import TestClient

    from app.main import app  # the `client` fixture points its database at this test's

    user = make_user(db, "clerk")
    db.commit()
    with TestClient(app, client=("198.51.100.66", 40000)) as stranger:
        for _ in range(12):
            assert _token(stranger, user.username, "guess").status_code in (401, 429)
        assert _token(stranger, user.username, PASSWORD).status_code == 429
    assert _token(client, user.username, PASSWORD).status_code == 200
    assert console_login(client, user.username).status_code == 303


def test_one_address_trying_many_accounts_waits(client, db, later):
    """Thirty failures over any usernames from one address: that address waits too."""
    from fastapi.testclient import TestClient

    from app.main import app  # the `client` fixture points its database at this test's

    user = make_user(db, "clerk")
    db.commit()
    with TestClient(app, client=("198.51.100.77", 40000)) as sprayer:
        codes = []
        for i in range(30):
            codes.append(_token(sprayer, f"nobody{i}", "x").status_code)
            if i % 20 == 19:
                later(61)  # stay under the 30 attempts a minute, which is another limit
        assert codes == [401] * 30
        r = _token(sprayer, user.username, PASSWORD)
        assert r.status_code == 429 and r.json()["code"] == "login_backoff"


def test_attempts_per_address_per_minute(client, db):
    """Whatever their outcome, 30 attempts a minute from one address; the 31st is refused."""
    user = make_user(db, "clerk")
    db.commit()
    for _ in range(30):
        assert _token(client, user.username, PASSWORD).status_code == 200
    r = _token(client, user.username, PASSWORD)
    assert r.status_code == 429 and "频繁" in r.json()["message"]


def test_login_works_while_redis_is_unreachable(client, db, monkeypatch):
    """Backoff counted in memory when Redis does not answer: logins still answer, never 500."""
    import redis

    from app.core.ratelimit import limiter

    dead = redis.Redis.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.3, socket_connect_timeout=0.3
    )
    monkeypatch.setattr(limiter, "_redis", dead)
    monkeypatch.setattr(limiter, "_redis_retry_at", None)
    user = make_user(db, "clerk")
    db.commit()
    assert _token(client, user.username, "x").status_code == 401
    assert _token(client, user.username, PASSWORD).status_code == 200
    assert limiter.redis_down


def test_console_login_session_and_logout(client, db):
    """Anonymous pages redirect to login; login sets a signed session; logout ends it."""
    user = make_user(db, "clerk")
    db.commit()
    r = client.get("/console/petitions?status=open", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fpetitions%3Fstatus%3Dopen"
    r = console_login(client, user.username, "wrong-password")
    assert r.status_code == 401 and "用户名或密码不对" in r.text
    r = console_login(client, user.username, next_url="/console/petitions?status=open")
    assert r.status_code == 303 and r.headers["location"] == "/console/petitions?status=open"
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie and "." in cookie
    page = client.get("/console/petitions")
    assert page.status_code == 200 and "信访件" in page.text
    r = client.post(
        "/console/logout", data={"csrf_token": page_csrf(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/console/petitions", follow_redirects=False).status_code == 303


def test_login_redirect_stays_inside_console(client, db):
    """`next` cannot send the browser to another site after login."""
    user = make_user(db, "clerk")
    db.commit()
    r = console_login(client, user.username, next_url="https://evil.example/")
    assert r.headers["location"] == "/console"


def test_tampered_or_expired_session_is_refused(client, db):
    """A cookie with a wrong signature or an expired session sends the browser to login."""
    user = make_user(db, "clerk")
    db.commit()
    console_login(client, user.username)
    good = client.cookies.get(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert client.get("/console/petitions", follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, good)
    assert client.get("/console/petitions", follow_redirects=False).status_code == 200
    for row in db.query(StaffSession).all():
        row.expires_at = utcnow() - timedelta(minutes=1)
    db.commit()
    assert client.get("/console/petitions", follow_redirects=False).status_code == 303


def test_csrf_is_required_on_console_forms(client, db):
    """A console form without its session's CSRF token is refused and changes nothing."""
    user = make_user(db, "clerk")
    petition = make_petition(db, status="accepted")
    db.commit()
    console_login(client, user.username)
    url = f"/console/petitions/{petition.number}/notes"
    for token in (None, "forged-token"):
        data = {"text": "伪造的备注"} | ({"csrf_token": token} if token else {})
        r = client.post(url, data=data, follow_redirects=False)
        assert r.status_code == 403 and r.json()["code"] == "csrf"
    page = client.get(f"/console/petitions/{petition.number}")
    assert "伪造的备注" not in page.text
    r = client.post(
        url, data={"text": "真实的备注", "csrf_token": page_csrf(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert "真实的备注" in client.get(f"/console/petitions/{petition.number}").text


def test_login_form_needs_its_csrf_cookie(client, db):
    """The login form is double-submit protected (a cross-site post has no matching cookie)."""
    user = make_user(db, "clerk")
    db.commit()
    r = client.post(
        "/console/login",
        data={"username": user.username, "password": PASSWORD, "csrf_token": "guess"},
        follow_redirects=False,
    )
    assert r.status_code == 403 and SESSION_COOKIE not in r.cookies


def test_api_with_session_cookie_needs_csrf_header(client, db):
    """The staff API used from the console session needs X-CSRF-Token on changes."""
    user = make_user(db, "clerk")
    petition = make_petition(db, status="accepted")
    db.commit()
    console_login(client, user.username)
    url = f"/api/v1/staff/petitions/{petition.number}/notes"
    assert client.get(f"/api/v1/staff/petitions/{petition.number}").status_code == 200
    r = client.post(url, json={"text": "无令牌"})
    assert r.status_code == 403 and r.json()["code"] == "csrf"
    token = page_csrf(client.get(f"/console/petitions/{petition.number}").text)
    r = client.post(url, json={"text": "有令牌"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 200


def test_seed_demo_creates_one_account_per_role_once(committing_sessions, monkeypatch, capsys):
    """On an empty accounts table, one demo account per role with random printed passwords."""
    monkeypatch.setattr(cli, "session_scope", lambda: session_scope(committing_sessions))
    assert cli.main(["seed-demo"]) == 0
    out = capsys.readouterr().out
    found = re.findall(r"用户名 (\S+)\s+密码 (\S+)", out)
    assert len(found) == 4
    assert len({pw for _, pw in found}) == 4
    with session_scope(committing_sessions) as db:
        roles = sorted(db.scalars(select(StaffUser.role)).all())
        assert roles == ["admin", "clerk", "officer", "supervisor"]
        for username, password in found:
            assert staff_service.authenticate(db=db, username=username, password=password)
    assert cli.main(["seed-demo"]) == 0
    assert "未创建" in capsys.readouterr().out
    # No default password anywhere: a second empty database gets different passwords.
    with session_scope(committing_sessions) as db:
        db.execute(delete(StaffUser))
    cli.main(["seed-demo"])
    again = dict(re.findall(r"用户名 (\S+)\s+密码 (\S+)", capsys.readouterr().out))
    assert all(again[u] != pw for u, pw in found)


def test_cli_create_user_prints_generated_password_once(committing_sessions, monkeypatch, capsys):
    """`create-user` without a password generates one and prints it."""
    monkeypatch.setattr(cli, "session_scope", lambda: session_scope(committing_sessions))
    assert cli.main(["create-user", "--username", "chief", "--role", "admin", "--generate"]) == 0
    password = re.search(r"密码（只显示这一次）：(\S+)", capsys.readouterr().out).group(1)
    with session_scope(committing_sessions) as db:
        assert staff_service.authenticate(db=db, username="chief", password=password)
    assert cli.main(["create-user", "--username", "chief", "--role", "admin", "--generate"]) == 1
    assert "已经有人用了" in capsys.readouterr().err


def test_cli_reset_password_prints_a_new_one_and_the_old_stops_working(
    committing_sessions, monkeypatch, capsys
):
    """`reset-password` (make reset-password NAME=…) replaces the password and prints it once."""
    monkeypatch.setattr(cli, "session_scope", lambda: session_scope(committing_sessions))
    assert cli.main(["create-user", "--username", "clerk9", "--role", "clerk", "--generate"]) == 0
    old = re.search(r"密码（只显示这一次）：(\S+)", capsys.readouterr().out).group(1)
    assert cli.main(["reset-password", "--username", "clerk9"]) == 0
    new = re.search(r"只显示这一次）：(\S+)", capsys.readouterr().out).group(1)
    assert new != old
    with session_scope(committing_sessions) as db:
        assert staff_service.authenticate(db=db, username="clerk9", password=new)
        assert not staff_service.authenticate(db=db, username="clerk9", password=old)
    assert cli.main(["reset-password", "--username", "nobody"]) == 1
    assert "没有账号" in capsys.readouterr().err
