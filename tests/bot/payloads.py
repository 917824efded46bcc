"""Api answers shaped like the api's schemas (app/status, app/policy, app/petition)."""

from __future__ import annotations

from typing import Any


def status(done: bool = False) -> dict[str, Any]:
    """A project status as `GET /projects/{code}/status` and lookups return it."""
    blockers = []
    if not done:
        blockers = [
            {
                "code": "fire_acceptance",
                "name": "消防验收未通过",
                "status": "open",
                "status_label": "未解决",
                "explanation": "小区的消防验收没有通过，住建局不能给项目办验收备案。",
                "note": "3号楼消防设施整改后尚未复验",
                "department": {"code": "fire_rescue", "name": "消防救援大队"},
                "departments": [
                    {"code": "fire_rescue", "name": "消防救援大队"},
                    {"code": "housing_bureau", "name": "住建局"},
                ],
                "buyer_at_fault": False,
                "policies": [
                    {
                        "code": "no_fault_buyer",
                        "name": "国家利益不受损、群众无过错",
                        "summary": "开发企业的过错由开发企业承担。",
                    }
                ],
                "resident_next_steps": ["不需要您补交材料，请保管好购房合同和交款票据。"],
                "time_limit": "住建局接到交办后5个工作日内书面答复。",
                "time_limit_working_days": 5,
                "expected_date": "2027-06-30",
                "since": "2026-11-01T00:00:00+00:00",
            }
        ]
    return {
        "code": "QS001",
        "name": "观象山庄",
        "aliases": ["观象小区"],
        "district": "城关镇",
        "address": "青松县城关镇观象路18号",
        "developer": "青松观象置业有限公司",
        "unit_count": 180,
        "initial_registration": {"done": done, "label": "已完成" if done else "未完成"},
        "transfer_registration": {
            "units_total": 180,
            "done": 0,
            "in_progress": 0,
            "not_started": 180,
            "rate": 0.0,
        },
        "expected_resolution_date": "2027-06-30",
        "open_blockers": blockers,
        "resolved_blockers": [],
        "next_steps": {"situation": "initial_pending", "title": "接下来", "items": ["等"]},
    }


def unit_match(done: bool = False, transfer: str = "not_started") -> dict[str, Any]:
    """A lookup that found one home."""
    return {
        "match": "unit",
        "project": {"code": "QS001", "name": "观象山庄", "aliases": [], "district": "城关镇"},
        "status": status(done),
        "unit": {
            "building": "3",
            "unit": "2",
            "room": "501",
            "transfer_status": transfer,
            "transfer_status_label": {"done": "已办结", "in_progress": "办理中"}.get(
                transfer, "未办理"
            ),
        },
    }


AMBIGUOUS = {
    "match": "ambiguous",
    "candidates": [
        {
            "project": {"code": "QS002", "name": "阳光花园"},
            "unit": {"building": "5", "unit": "1", "room": "301"},
            "score": 0.8,
        },
        {"project": {"code": "QS003", "name": "阳光花苑"}, "unit": None, "score": 0.7},
    ],
}

NONE = {"match": "none", "message": "没有找到这个地址对应的房屋。"}

GUIDANCE = {
    "materials": {
        "transfer_registration": {"title": "办房本（转移登记）请带：", "items": ["身份证原件"]},
        "initial_pending": {"title": "您现在可以先准备：", "items": ["保管好购房合同"]},
    },
    "where_to_apply": {
        "title": "去哪里办",
        "items": ["政务服务中心不动产登记窗口"],
        "note": "工作日办理",
    },
    "next_steps": {
        "initial_done": {"title": "您的小区已经可以办房本了", "items": ["准备材料"]},
        "initial_pending": {"title": "小区首次登记还没办完，接下来", "items": ["等部门答复"]},
        "transfer_in_progress": {"title": "正在办理中", "items": ["等通知"]},
        "transfer_done": {"title": "已经办好了", "items": ["去领证"]},
        "not_found": {"title": "暂时没有查到您家的房子", "items": ["再确认地址"]},
    },
}

PETITION_STATUS = {
    "number": "XF-20261201-0001",
    "status": "assigned",
    "status_label": "已分派",
    "departments": ["住建局"],
    "updated_at": "2026-12-01T10:00:00+08:00",
    "answer_due": "2026-12-08",
    "answers": [],
    "outcome": None,
    "closed_at": None,
    "closure_due": None,
    "notice_end": None,
    "review_due": None,
    "next_step": "等待住建局答复",
}

PETITION_LIST = {"petitions": [PETITION_STATUS]}


# -- the loop (docs/loop.md) ---------------------------------------------------------------------

TURN_BOT = {"mode": "bot", "staff_name": None, "notify": True, "feedback_for": None}
TURN_STAFF = {"mode": "staff", "staff_name": "王芳", "notify": True, "feedback_for": None}
TURN_FEEDBACK = {
    "mode": "bot",
    "staff_name": None,
    "notify": True,
    "feedback_for": "XF-20261201-0001",
}

HANDOFF_OPEN = {
    "office_hours": True,
    "position": 2,
    "estimated_wait_minutes": 10,
    "next_open": None,
    "hours_text": "工作日 9:00—17:30",
}
HANDOFF_CLOSED = {
    "office_hours": False,
    "position": None,
    "estimated_wait_minutes": None,
    "next_open": "周一 9:00",
    "hours_text": "工作日 9:00—17:30",
}

FEEDBACK_REVIEW = {
    "number": "XF-20261201-0001",
    "status": "review",
    "status_label": "复查中",
    "review_due": "2026-12-22",
}
FEEDBACK_CLOSED = {
    "number": "XF-20261201-0001",
    "status": "closed",
    "status_label": "已办结",
    "review_due": None,
}

# A petition a department has answered (approved text), still open.
PETITION_ANSWERED = {
    **PETITION_STATUS,
    "status": "verifying",
    "status_label": "核实中",
    "updated_at": "2026-12-03T16:30:00+00:00",  # 12月4日 in Asia/Shanghai
    "answers": [
        {
            "department": "housing_bureau",
            "department_name": "住建局",
            "text": "已约谈开发企业，要求其在12月20日前补齐消防整改材料，逾期将列入信用记录。",
            "at": "2026-12-03T10:00:00+08:00",
        }
    ],
    "outcome": None,
    "closed_at": None,
    "closure_due": "2026-12-31",
    "notice_end": None,
    "review_due": None,
    "next_step": "核实开发企业的整改情况",
}

# Closed, with long answers from three departments (the reply stays short).
PETITION_CLOSED = {
    **PETITION_STATUS,
    "status": "closed",
    "status_label": "已办结",
    "departments": ["住建局", "自然资源局", "税务局"],
    "updated_at": "2026-12-20T09:00:00+08:00",
    "answers": [
        {
            "department": code,
            "department_name": name,
            "text": f"{name}答复：" + "经核查，该项目的相关手续已经补办完成，" * 12,
            "at": "2026-12-10T09:00:00+08:00",
        }
        for code, name in (
            ("housing_bureau", "住建局"),
            ("natural_resources", "自然资源局"),
            ("tax_bureau", "税务局"),
        )
    ],
    "outcome": "开发企业已补齐消防整改，住建局已办理竣工验收备案，可以申请转移登记。",
    "closed_at": "2026-12-20T09:00:00+08:00",
    "closure_due": "2026-12-31",
    "notice_end": "2026-12-18",
    "review_due": None,
    "next_step": "带齐材料到不动产登记窗口申请转移登记",
}

# What the bot files: a petition with the conversation and the blockers it explained.
PETITION_CREATE = {
    "person_name": "王秀英",
    "phone": "13912345678",
    "address": "观象山庄3号楼2单元501",
    "project_code": "QS001",
    "description": "等了五年",
    "consent": True,
    "channel": "webchat",
    "conversation": [
        {"at": "2026-12-01T02:00:00+00:00", "from": "resident", "text": "观象山庄3号楼2单元501"}
    ],
    "blockers": ["fire_acceptance", "civil_defense"],
}
