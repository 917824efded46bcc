"""Settings of the action server, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BOT_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = BOT_DIR.parent

# Development defaults: usable only on the embedded default bound to 127.0.0.1.
DEV_SERVICE_TOKEN = "dev-only-service-token-change-me"
DEV_SLOT_KEY_SEED = "dev-only-bot-slot-key-change-me"


@dataclass(frozen=True)
class Settings:
    """Typed settings of the actions; each field is an environment variable."""

    api_url: str
    service_token: str
    api_timeout: float
    turn_timeout: float
    slot_key: str | None
    environment: str
    # The maintainers' NLU inbox (docs/maintainers.md): a message below this intent confidence
    # is reported (the api keeps its own NLU_INBOX_CONFIDENCE, same default); the report's
    # timeout is short, it never holds the reply up for long.
    nlu_inbox_confidence: float
    nlu_inbox_timeout: float


def _load() -> Settings:
    environment = os.environ.get("ENVIRONMENT", "development")
    token = os.environ.get("SERVICE_TOKEN", DEV_SERVICE_TOKEN)
    slot_key = os.environ.get("BOT_SLOT_KEY") or None
    if environment == "production":
        if token == DEV_SERVICE_TOKEN or "change-me" in token:
            raise RuntimeError("SERVICE_TOKEN must be set to a real secret in production")
        if not slot_key:
            raise RuntimeError("BOT_SLOT_KEY must be set (a Fernet key) in production")
    return Settings(
        api_url=os.environ.get("API_URL", "http://127.0.0.1:8000").rstrip("/"),
        service_token=token,
        api_timeout=float(os.environ.get("API_TIMEOUT", "5.0")),
        # The call that starts every turn (conversation mode): short, the bot carries on without.
        turn_timeout=float(os.environ.get("API_TURN_TIMEOUT", "1.5")),
        slot_key=slot_key,
        environment=environment,
        nlu_inbox_confidence=float(os.environ.get("NLU_INBOX_CONFIDENCE", "0.6")),
        nlu_inbox_timeout=float(os.environ.get("NLU_INBOX_TIMEOUT", "1.0")),
    )


settings = _load()
