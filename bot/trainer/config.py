"""Settings of the training job, read once from the environment (see docs/maintainers.md).

Every field is an environment variable; the embedded default (`make run` on a checkout) needs
none. Relative paths are taken from the repository root, except a relative SQLite queue path,
which is taken from the api directory as the api does (api/app/jobs/queue.py), so both sides
open the same file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

BOT_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = BOT_DIR.parent
API_DIR = REPO_DIR / "api"

# The api's development default (api/app/core/config.py): the embedded default only.
DEV_SERVICE_TOKEN = "dev-only-service-token-change-me"


@dataclass(frozen=True)
class Settings:
    """Typed settings of the trainer."""

    api_url: str
    service_token: str
    environment: str
    # The api's job queue: same storage URL, queue `<job_queue_name>-training`.
    job_queue_url: str
    job_queue_name: str
    # Where the candidate is trained (a temporary directory inside it, removed afterwards).
    candidates_dir: Path
    # Training inputs: the project's config, domain and dialogue data; nlu_data/ minus test/.
    config: Path
    domain: Path
    dialogue_data: Path
    nlu_dir: Path
    heldout_dir: Path
    # At most this many examples per intent of nlu_data/ (0: all), for tests.
    data_subset: int
    # Time-box of `rasa train` in seconds (the budget on the 2-core machine).
    train_timeout: float
    eval_timeout: float
    # The conversation suite against the candidate (and the live model) in a sandbox stack.
    conversations: bool
    conversations_dir: Path
    cases_dir: Path
    api_python: Path
    # A running sandbox api to use instead of starting one (compose: no api venv on the bot
    # image); it must be a throwaway instance with the demo ledger, never the real api.
    sandbox_api_url: str
    sandbox_service_token: str
    # A clerk of that sandbox api (cases whose setup publishes a department's answer).
    sandbox_staff_username: str
    sandbox_staff_password: str
    # Whole-job attempts (the first run and the retries) and the first delay between them
    # (doubled each time).
    attempts: int
    retry_delay: float
    http_timeout: float
    rasa_cache_dir: Path
    keep_workdir: bool

    @property
    def queue_name(self) -> str:
        """The training queue's name inside the job storage."""
        return f"{self.job_queue_name}-training"

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests, bench)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def _path(value: str, base: Path = REPO_DIR) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    environment = env.get("ENVIRONMENT", "development")
    token = env.get("SERVICE_TOKEN", DEV_SERVICE_TOKEN)
    if environment == "production" and (token == DEV_SERVICE_TOKEN or "change-me" in token):
        raise RuntimeError("SERVICE_TOKEN must be set to a real secret in production")
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    conversations_dir = _path(env.get("TRAINER_CONVERSATIONS_DIR", "tests/conversations"))
    return Settings(
        api_url=env.get("API_URL", "http://127.0.0.1:8000").rstrip("/"),
        service_token=token,
        environment=environment,
        job_queue_url=env.get("JOB_QUEUE_URL") or f"sqlite:///{API_DIR / 'data' / 'jobs.db'}",
        job_queue_name=env.get("JOB_QUEUE_NAME") or "fangben",
        candidates_dir=_path(env.get("MODEL_CANDIDATES_DIR", "api/data/models")),
        config=_path(env.get("TRAINER_CONFIG", "bot/config.yml")),
        domain=_path(env.get("TRAINER_DOMAIN", "bot/domain")),
        dialogue_data=_path(env.get("TRAINER_DIALOGUE_DATA", "bot/data")),
        nlu_dir=_path(env.get("TRAINER_NLU_DIR", "nlu_data")),
        heldout_dir=_path(env.get("TRAINER_HELDOUT_DIR", "nlu_data/test")),
        data_subset=int(env.get("TRAINER_DATA_SUBSET") or 0),
        train_timeout=float(env.get("TRAINER_TRAIN_TIMEOUT") or 180),
        eval_timeout=float(env.get("TRAINER_EVAL_TIMEOUT") or 300),
        conversations=_flag(env.get("TRAINER_CONVERSATIONS", "1")),
        conversations_dir=conversations_dir,
        cases_dir=_path(env.get("TRAINER_CASES_DIR") or str(conversations_dir / "cases")),
        api_python=_path(env.get("TRAINER_API_PYTHON", "api/.venv/bin/python")),
        sandbox_api_url=env.get("TRAINER_SANDBOX_API_URL", "").rstrip("/"),
        sandbox_service_token=env.get("TRAINER_SANDBOX_SERVICE_TOKEN", ""),
        sandbox_staff_username=env.get("TRAINER_SANDBOX_STAFF_USERNAME", ""),
        sandbox_staff_password=env.get("TRAINER_SANDBOX_STAFF_PASSWORD", ""),
        attempts=max(1, int(env.get("TRAINER_ATTEMPTS") or 3)),
        retry_delay=float(env.get("TRAINER_RETRY_DELAY") or 30),
        http_timeout=float(env.get("TRAINER_HTTP_TIMEOUT") or 60),
        rasa_cache_dir=_path(
            env.get("RASA_CACHE_DIRECTORY") or str(Path(cache) / "fangben" / "rasa-cache")
        ),
        keep_workdir=_flag(env.get("TRAINER_KEEP_WORKDIR", "0")),
    )
