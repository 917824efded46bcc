"""Settings of the model registry, read from the environment like app.core.config's (kept
here so the registry's knobs live with it)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.config import API_DIR


class ModelhubSettings(BaseSettings):
    """Promotion thresholds, where candidates are kept, how long a training may take."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # A candidate is refused when the held-out intent macro-F1 drops by more than this...
    model_max_macro_f1_drop: float = Field(default=0.005, ge=0.0, le=1.0)
    # ...or when any single intent's F1 drops by more than this.
    model_max_intent_f1_drop: float = Field(default=0.02, ge=0.0, le=1.0)
    # Candidates (and the registry's copy of every model) live here, outside bot/models/.
    model_candidates_dir: Path = API_DIR / "data" / "models"
    # The largest artifact the trainer may upload.
    model_max_upload_bytes: int = 512 * 1024 * 1024
    # A model still `training` after this long is taken as lost (the job died): failed.
    model_training_timeout_seconds: int = 3600
    # A training whose trainer reported nothing for this long (no start, or silent since its
    # last step: the trainer was killed or is not running) is marked failed.
    model_training_stall_seconds: int = Field(default=600, ge=30)


settings = ModelhubSettings()


def candidates_dir() -> Path:
    """MODEL_CANDIDATES_DIR as an absolute path (a relative one is taken from api/)."""
    path = settings.model_candidates_dir
    return path if path.is_absolute() else API_DIR / path
