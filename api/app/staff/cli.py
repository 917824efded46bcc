"""Staff accounts from the command line.

    python -m app.staff.cli create-user --username U --role R [--department CODE]
    python -m app.staff.cli seed-demo      # only on an empty accounts table (make run)
    python -m app.staff.cli reset-password --username U   # new random password, printed once

Passwords are typed twice at a prompt or generated; a generated one is printed once.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from app.core.config import settings
from app.core.database import session_scope
from app.core.errors import AppError
from app.staff import service as staff_service
from app.staff.models import ROLE_LABELS


def _create_user(args: argparse.Namespace) -> int:
    generated = False
    password = args.password
    if not password and sys.stdin.isatty() and not args.generate:
        password = getpass.getpass("密码（留空则随机生成）：")
        if password and getpass.getpass("再输入一次：") != password:
            print("两次输入的密码不一致。", file=sys.stderr)
            return 2
    if not password:
        password, generated = staff_service.generate_password(), True
    try:
        with session_scope() as db:
            user = staff_service.create_user(
                db=db,
                username=args.username,
                password=password,
                role=args.role,
                department=args.department,
                display_name=args.display_name or "",
                actor="cli:create-user",
            )
            label = ROLE_LABELS[user.role]
    except AppError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    print(f"已创建账号 {args.username}（{label}）。")
    if generated:
        print(f"密码（只显示这一次）：{password}")
    return 0


def _seed_demo(_args: argparse.Namespace) -> int:
    with session_scope() as db:
        created = staff_service.seed_demo(db=db)
        lines = [(u.username, u.role_label, u.department or "", pw) for u, pw in created]
    if not lines:
        print("已有工作人员账号，未创建演示账号。")
        return 0
    print("已创建演示账号（密码只显示这一次，请记下）：")
    for username, label, department, password in lines:
        extra = f" 部门={department}" if department else ""
        print(f"  {label:<6} 用户名 {username:<16} 密码 {password}{extra}")
    print(f"登录地址：http://{settings.host}:{settings.port}/console")
    return 0


def _reset_password(args: argparse.Namespace) -> int:
    password = staff_service.generate_password()
    with session_scope() as db:
        user = staff_service.get_by_username(db=db, username=args.username)
        if user is None:
            print(f"没有账号 {args.username}。", file=sys.stderr)
            return 1
        # Also logs the account out everywhere (sessions are dropped with the old password).
        staff_service.update_user(db=db, user=user, actor="cli:reset-password", password=password)
    print(f"已重置账号 {args.username} 的密码（只显示这一次）：{password}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m app.staff.cli`."""
    parser = argparse.ArgumentParser(prog="app.staff.cli", description="工作人员账号")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-user", help="新建账号")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=list(ROLE_LABELS))
    create.add_argument("--department", help="部门代码（部门承办人必填）")
    create.add_argument("--display-name")
    create.add_argument("--password", help=argparse.SUPPRESS)
    create.add_argument("--generate", action="store_true", help="不提示，直接随机生成密码")
    create.set_defaults(func=_create_user)
    seed = sub.add_parser("seed-demo", help="账号表为空时，为每个角色建一个演示账号")
    seed.set_defaults(func=_seed_demo)
    reset = sub.add_parser("reset-password", help="重置密码（随机生成，只显示一次）")
    reset.add_argument("--username", required=True)
    reset.set_defaults(func=_reset_password)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
