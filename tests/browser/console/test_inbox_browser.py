"""我的提醒 in headless Chromium at 1366×768 and 768×1024: the header badge counts the unread
reminders, the list shows them, 标为已读 and 全部标为已读 clear the badge. Screenshots."""

from __future__ import annotations

import subprocess

import pytest
from browser_support import API_DIR, API_PY
from conftest import CONSOLE_ENV

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Reminders written through the real service, as the deadline job writes them.
SEED = """
from app.core.database import session_scope
from app.inbox import service
from app.staff.models import StaffUser
from sqlalchemy import select
with session_scope() as db:
    clerk = db.scalar(select(StaffUser).where(StaffUser.username == "clerk1"))
    service.notify_users(db, [clerk], kind="expected_date_passed", key="browser:1",
        text="预计化解日期已过：项目“观象山庄”预计2026年10月31日化解，仍有2个卡点未化解。"
             "请推进化解或更新预计化解日期。", link="/console/projects")
    service.notify_users(db, [clerk], kind="supervised", key="browser:2",
        text="超期督办：信访 XF-20261102-0001 已超过办理期限，系统已自动列入督办，请跟进。",
        link="/console/petitions")
"""


def test_inbox_badge_list_and_mark_read(desk, console_url, shot):
    clerk = desk("clerk")
    subprocess.run([API_PY, "-c", SEED], cwd=API_DIR, env=CONSOLE_ENV, check=True)
    clerk.goto("/console/petitions")
    assert clerk.inner_text("[data-inbox-unread]") == "2"
    clerk.click("a.inbox-link")
    assert clerk.url.endswith("/console/inbox")
    main = clerk.inner_text("main")
    assert "我的提醒" in main and "观象山庄" in main and "XF-20261102-0001" in main
    shot(clerk, "20-inbox-1366")
    clerk.set_viewport_size({"width": 768, "height": 1024})
    shot(clerk, "21-inbox-768")
    clerk.set_viewport_size({"width": 1366, "height": 768})

    clerk.locator("tr", has_text="XF-20261102-0001").locator("button").click()
    assert "已标为已读" in clerk.inner_text(".flash.ok")
    assert clerk.inner_text("[data-inbox-unread]") == "1"
    clerk.click("form[action='/console/inbox/read-all'] button")
    assert clerk.locator("[data-inbox-unread]").count() == 0
    assert "未读" not in clerk.inner_text("tbody")
    shot(clerk, "22-inbox-all-read")


def test_the_longest_menu_fits_with_the_inbox_link(desk, shot):
    """The admin's menu (the longest) and 我的提醒 share the header without overlapping."""
    admin = desk("admin")
    admin.goto("/console/inbox")
    nav = admin.locator("header nav").bounding_box()
    who = admin.locator("header .who").bounding_box()
    assert nav and who
    assert nav["x"] + nav["width"] <= who["x"] + 1 or nav["y"] >= who["y"] + who["height"] - 1
    shot(admin, "23-inbox-admin-1366")
