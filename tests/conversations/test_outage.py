"""No dead conversation: with the action server or the api down, every message gets a reply,
and once the part is back the same conversation carries on (slow, real stack)."""

from __future__ import annotations

import uuid

import pytest
from e2e_stack import Stack, start_server, stop_server
from runner import reply_text

pytestmark = pytest.mark.slow


def say(stack: Stack, sender: str, text: str) -> str:
    """One message over the REST channel; what the resident reads."""
    return reply_text(stack.say(sender, text))


def test_the_action_server_down_still_answers_and_the_next_message_works(stack: Stack) -> None:
    sender = f"outage-actions-{uuid.uuid4().hex[:8]}"
    assert "观象山庄" in say(stack, sender, "观象山庄3号楼2单元501")
    stop_server(stack, "actions")
    try:
        for text in ("你好", "详细原因", "我要反映"):
            assert "出了点问题" in say(stack, sender, text)
    finally:
        start_server(stack, "actions")
    assert "您好" in say(stack, sender, "你好")
    assert "首次登记" in say(stack, sender, "观象山庄3号楼2单元501")


def test_the_api_down_gets_an_apology_and_the_conversation_resumes(stack: Stack) -> None:
    sender = f"outage-api-{uuid.uuid4().hex[:8]}"
    stop_server(stack, "api")
    try:
        down = say(stack, sender, "观象山庄3号楼2单元501")
        assert "暂时连不上" in down
        assert say(stack, sender, "要带什么材料").strip()
    finally:
        start_server(stack, "api", seconds=60)
    back = say(stack, sender, "观象山庄3号楼2单元501")
    assert "首次登记" in back and "消防" in back
