"""What the NLU inbox tests share: made-up personal data and the bot's service headers."""

from __future__ import annotations

from app.core.config import settings

# An ID number and a mobile number as a resident types them (both made up).
ID_NUMBER = "110101199003071234"
PHONE = "13912345678"
SENDER = "web-nlu-test-sender-0001"


def service(sender: str = SENDER) -> dict[str, str]:
    """The headers the action server sends."""
    return {"Authorization": f"Service {settings.service_token}", "X-Sender-Id": sender}
