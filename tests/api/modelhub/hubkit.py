"""What the registry tests share: small Rasa-shaped model archives (a metadata.json with a
model id, as Rasa 3.6 writes it, plus some bytes), metrics as the trainer reports them, and the
trainer's service headers."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

from app.core.config import settings

INTENTS = ("greet", "ask_materials", "ask_certificate_status", "complain")


def service_headers() -> dict[str, str]:
    """The trainer's (and Rasa's) `Authorization: Service …`."""
    return {"Authorization": f"Service {settings.service_token}"}


def make_archive(folder: Path, model_id: str | None = None, payload: int = 2048) -> Path:
    """A `.tar.gz` laid out like a Rasa 3.6 model: metadata.json at the root (its model_id is
    the fingerprint) and a component file of `payload` random bytes."""
    model_id = model_id or uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model_id[:16]}.tar.gz"
    metadata = json.dumps({"model_id": model_id, "rasa_open_source_version": "3.6.21"}).encode()
    blob = uuid.uuid4().bytes * (payload // 16 + 1)
    with tarfile.open(path, "w:gz") as archive:
        for name, data in (("metadata.json", metadata), ("components/blob.bin", blob[:payload])):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def metrics(
    macro: float = 0.95,
    per_intent: dict[str, float] | None = None,
    entity: float = 0.99,
    failed: tuple[str, ...] = (),
    total: int = 14,
    **extra: Any,
) -> dict[str, Any]:
    """A metrics JSON in the shape of bot/results/nlu_summary.json plus the conversation suite."""
    per_intent = per_intent or dict.fromkeys(INTENTS, macro)
    return {
        "intent_macro_f1": macro,
        "per_intent": {name: {"f1": f1, "support": 20} for name, f1 in per_intent.items()},
        "entities": {"f1": entity},
        "conversations": {"passed": total - len(failed), "total": total, "failed": list(failed)},
        **extra,
    }
