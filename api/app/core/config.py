"""Settings of the api service, read once from the environment (see .env.example)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

API_DIR = Path(__file__).resolve().parents[2]
REPO_DIR = API_DIR.parent

# Development defaults: safe only on the embedded default bound to 127.0.0.1.
_DEV_SECRETS = {
    "id_hash_secret": "dev-only-id-hash-secret-change-me",
    "secret_key": "dev-only-session-secret-change-me",
    "service_token": "dev-only-service-token-change-me",
}


class Settings(BaseSettings):
    """Typed settings; every field is an environment variable of the same name in upper case."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{API_DIR / 'data' / 'fangben.db'}"
    # PostgreSQL away or silent: a request gives up and answers a Chinese 503 (app/core/
    # database.py) instead of hanging. Seconds to open a connection, to wait for a free one in
    # the pool, of silence on a live connection before TCP keepalives give it up, and at most
    # for one answer of the server (a statement, a commit, a ping) before the connection is
    # closed (a frozen server whose kernel still acknowledges; longer than any real statement).
    database_connect_timeout: int = Field(default=5, ge=1)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    database_keepalive_seconds: int = Field(default=30, ge=3)
    database_wait_timeout: float = Field(default=120.0, gt=0)
    policies_dir: Path = REPO_DIR / "policies"

    # Keyed hash of resident ID numbers (never stored in the clear).
    id_hash_secret: str = _DEV_SECRETS["id_hash_secret"]
    # Signs console sessions, CSRF tokens and web-chat conversation ids.
    secret_key: str = _DEV_SECRETS["secret_key"]
    # Bearer token the action server and the web-chat proxy present to the api.
    service_token: str = _DEV_SECRETS["service_token"]

    host: str = "127.0.0.1"
    port: int = 8000
    rasa_url: str = "http://127.0.0.1:5005"
    # When set, rate limits and shared state live in Redis (several api replicas).
    redis_url: str | None = None
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses or networks, app/core/proxies.py); empty: nobody's, the peer is the client.
    trusted_proxies: str = ""

    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    lookup_rate_per_sender: int = Field(default=20, description="lookups per sender per minute")
    lookup_rate_per_ip: int = Field(default=120, description="lookups per IP per minute")
    petition_rate_per_ip: int = 30
    # A resident types far slower than the chat limits; scripts hit them at once.
    chat_rate_per_conversation: int = Field(
        default=20, description="web chat messages per conversation per minute"
    )
    chat_rate_per_ip: int = Field(default=60, description="web chat messages per IP per minute")
    # Web chat messages with Rasa at once per api process; one more is answered 429 "稍等" at
    # once (app/chat/proxy.py). Its blocking bits run on `chat_threads` threads of their own.
    chat_max_in_flight: int = Field(default=100, ge=1)
    chat_threads: int = Field(default=8, ge=1)
    session_max_age_seconds: int = 8 * 3600
    # Ledger uploads (docs/ledger.md): kept here until their import job has run (the api and
    # the worker share this directory), capped in size; XLSX workbooks are checked against the
    # caps below before openpyxl opens them (a zip bomb never reaches it).
    ledger_upload_dir: Path = API_DIR / "data" / "ledger-uploads"
    ledger_max_upload_bytes: int = 50 * 1024 * 1024
    # Sheet XML is streamed; shared strings are held in memory by openpyxl: a lower cap.
    ledger_xlsx_max_uncompressed_bytes: int = 1024 * 1024 * 1024
    ledger_xlsx_max_shared_strings_bytes: int = 128 * 1024 * 1024
    ledger_xlsx_max_ratio: int = 100
    # A province's ledger (about 3.1M units) fits in one sheet.
    ledger_max_rows: int = 4_000_000
    # On the embedded SQLite file the import's final write holds the one write lock; this cap
    # keeps it short (petitions wait for it, never fail). PostgreSQL has no such cap.
    ledger_sqlite_max_rows: int = 500_000
    # PostgreSQL: a units sheet of at least this many rows, into homes not yet in the table and
    # at least as many as the table holds, is loaded in bulk (app.ledger.bulk: checked with
    # pyarrow, COPYed into unit, its indexes rebuilt; the table is locked meanwhile).
    ledger_bulk_min_rows: int = 100_000
    # SQLite only: how long a write (a petition, say) waits at the write gate while an import
    # is being written (app.core.sqlite_gate) before it goes on and meets the busy timeout.
    sqlite_gate_wait: float = Field(default=300.0, gt=0)
    # A project counts as resolved (化解) on the dashboard only when its 首次登记 is done and
    # more than this share (%) of its households completed 转移登记 (no resolution on paper).
    project_resolved_transfer_rate: float = Field(default=25.0, ge=0, le=100)
    # An import still queued or running after this long lost its worker (killed, restarted):
    # a sweep marks it failed (nothing of it was written) and removes its files.
    ledger_import_stall_seconds: int = 7200
    # Background jobs (Huey): `sqlite:///<path>` (embedded) or `redis://host:port/db`.
    job_queue_url: str = f"sqlite:///{API_DIR / 'data' / 'jobs.db'}"
    # Queue name inside that storage (tests give each run its own).
    job_queue_name: str = "fangben"
    # Delivery attempts of one notification before it is listed as failed for staff.
    notify_max_attempts: int = 6
    # First retry delay in seconds; each further one waits twice as long (at most an hour).
    notify_retry_seconds: float = 30.0
    # A delivery claimed longer ago than this is taken as lost (a killed worker) and sent again.
    notify_claim_timeout_seconds: float = 120.0
    # WeChat template message used outside the 48-hour customer-service window.
    wechat_template_id: str = ""
    # Optional outgoing webhook for staff reminders (e.g. a WeCom group robot's URL); empty: off.
    staff_webhook_url: str = ""
    # Maintainers' NLU inbox (docs/maintainers.md): a message whose intent confidence is below
    # this is kept for a look (the bot applies the same default, NLU_INBOX_CONFIDENCE).
    nlu_inbox_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    # The NLU data the inbox export de-duplicates against (training files and test/, the
    # held-out set), and where the annotated examples are written for review.
    nlu_data_dir: Path = REPO_DIR / "nlu_data"
    nlu_export_dir: Path = REPO_DIR / "nlu_data" / "inbox"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production":
            for name, placeholder in _DEV_SECRETS.items():
                value = getattr(self, name)
                if value == placeholder or "change-me" in value or len(value) < 16:
                    raise ValueError(f"{name.upper()} must be set to a real secret in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        """True when the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


settings = Settings()
