"""Staff accounts, password checks and sessions (console cookies and API bearer tokens)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.policy.departments import departments
from app.staff.models import StaffSession, StaffUser
from app.staff.roles import ROLES

# argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): strong enough for staff
# passwords while keeping a login well under a second on a small office server.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the username is unknown, so both paths take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    """argon2id hash of a password."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the argon2 hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password to print once (16 URL-safe characters)."""
    return secrets.token_urlsafe(12)


def _check_fields(role: str, department: str | None) -> str | None:
    if role not in ROLES:
        raise AppError(422, "bad_role", f"角色只能是：{'、'.join(ROLES)}。")
    if role == "officer":
        if not department:
            raise AppError(422, "department_required", "部门承办人必须绑定一个部门。")
        if department not in departments():
            raise AppError(422, "unknown_department", "没有这个部门代码，请从部门目录中选择。")
        return department
    return None


def create_user(
    *,
    db: Session,
    username: str,
    password: str,
    role: str,
    department: str | None = None,
    display_name: str = "",
    actor: str = "system",
) -> StaffUser:
    """Create an account (argon2 hash); audited."""
    if not USERNAME_RE.match(username):
        raise AppError(422, "bad_username", "用户名只能用 3-64 位字母、数字、点、下划线或连字符。")
    if len(password) < MIN_PASSWORD:
        raise AppError(422, "weak_password", f"密码至少 {MIN_PASSWORD} 位。")
    department = _check_fields(role, department)
    if get_by_username(db=db, username=username) is not None:
        raise AppError(409, "username_taken", "这个用户名已经有人用了。")
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        department=department,
        active=True,
    )
    db.add(user)
    db.flush()
    audit.record(
        db=db,
        actor=actor,
        action="user.create",
        entity_type="staff_user",
        entity_id=user.username,
        after={"role": role, "department": department},
    )
    return user


def update_user(
    *,
    db: Session,
    user: StaffUser,
    actor: str,
    role: str | None = None,
    department: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> StaffUser:
    """Change an account's role, department, active flag or password; audited."""
    before = {"role": user.role, "department": user.department, "active": user.active}
    new_role = role or user.role
    new_department = _check_fields(new_role, department if role else user.department)
    if password is not None and len(password) < MIN_PASSWORD:
        raise AppError(422, "weak_password", f"密码至少 {MIN_PASSWORD} 位。")
    user.role, user.department = new_role, new_department
    if active is not None:
        user.active = active
    if password is not None:
        user.password_hash = hash_password(password)
    if active is False or password is not None:
        db.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
    after = {"role": user.role, "department": user.department, "active": user.active}
    if password is not None:
        after["password"] = "已重置"
    db.flush()
    audit.record(
        db=db,
        actor=actor,
        action="user.update",
        entity_type="staff_user",
        entity_id=user.username,
        before=before,
        after=after,
    )
    return user


def get_by_username(*, db: Session, username: str) -> StaffUser | None:
    """The account with this username."""
    return db.scalar(select(StaffUser).where(StaffUser.username == username))


def get(*, db: Session, user_id: int) -> StaffUser | None:
    """The account with this id."""
    return db.get(StaffUser, user_id)


def display_names(*, db: Session, usernames: Iterable[str]) -> dict[str, str]:
    """username → display name for the accounts among `usernames` (audit trails, notes)."""
    wanted = {u for u in usernames if u}
    if not wanted:
        return {}
    rows = db.execute(
        select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(wanted))
    ).all()
    return {u: d or u for u, d in rows}


def list_users(*, db: Session) -> Sequence[StaffUser]:
    """Every account, by role then username."""
    return db.scalars(select(StaffUser).order_by(StaffUser.role, StaffUser.username)).all()


def count_users(*, db: Session) -> int:
    """How many accounts exist."""
    return db.scalar(select(func.count()).select_from(StaffUser)) or 0


def authenticate(*, db: Session, username: str, password: str) -> StaffUser | None:
    """The active account when the password matches, else None (same work either way)."""
    user = get_by_username(db=db, username=username)
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def create_session(*, db: Session, user: StaffUser, kind: str) -> tuple[str, datetime]:
    """Open a session ("console") or bearer token ("bearer"); returns (secret, expiry)."""
    now = utcnow()
    db.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=settings.session_max_age_seconds)
    db.add(StaffSession(token_hash=_digest(token), user_id=user.id, kind=kind, expires_at=expires))
    db.flush()
    return token, expires


def resolve_session(*, db: Session, token: str, kind: str) -> StaffUser | None:
    """The active account of an unexpired session or token, else None."""
    row = db.get(StaffSession, _digest(token))
    if row is None or row.kind != kind or _aware(row.expires_at) <= utcnow():
        return None
    user = db.get(StaffUser, row.user_id)
    return user if user is not None and user.active else None


def end_session(*, db: Session, token: str) -> None:
    """Forget a session or token (logout)."""
    db.execute(delete(StaffSession).where(StaffSession.token_hash == _digest(token)))


DEMO_ACCOUNTS = [
    ("demo_clerk", "clerk", None, "演示受理员"),
    ("demo_officer", "officer", "housing_bureau", "演示住建局承办人"),
    ("demo_supervisor", "supervisor", None, "演示督办负责人"),
    ("demo_admin", "admin", None, "演示管理员"),
]


def seed_demo(*, db: Session) -> list[tuple[StaffUser, str]]:
    """On an empty accounts table, one demo account per role with a random password."""
    if count_users(db=db) > 0:
        return []
    created = []
    known = departments()
    for username, role, department, name in DEMO_ACCOUNTS:
        if department and known and department not in known:
            department = next(iter(known))
        password = generate_password()
        user = create_user(
            db=db,
            username=username,
            password=password,
            role=role,
            department=department,
            display_name=name,
            actor="system:seed-demo",
        )
        created.append((user, password))
    return created
