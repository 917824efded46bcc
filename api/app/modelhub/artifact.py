"""Rasa model files: the fingerprint inside a `.tar.gz`, and where the registry keeps them."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

from app.core.errors import AppError
from app.modelhub.config import candidates_dir

# Rasa 3.6 writes metadata.json at the archive's root (`model_id`: a uuid4 hex per training).
METADATA_NAMES = ("metadata.json", "./metadata.json", "/metadata.json")
BAD_MODEL_MESSAGE = "这不是有效的 Rasa 模型文件（缺少 metadata.json）。"
_FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def read_metadata(path: Path) -> dict[str, Any]:
    """metadata.json of a Rasa model archive; AppError 422 when it is not one."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            for name in METADATA_NAMES:
                try:
                    member = archive.getmember(name)
                except KeyError:
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    break
                data = json.loads(handle.read(1024 * 1024 * 16).decode("utf-8"))
                if isinstance(data, dict):
                    return data
                break
    except (OSError, tarfile.TarError, EOFError, ValueError, UnicodeDecodeError):
        pass
    raise AppError(422, "bad_model", BAD_MODEL_MESSAGE)


def fingerprint_of(path: Path) -> str:
    """The model's fingerprint: Rasa's `model_id` (what Rasa's /status reports)."""
    model_id = read_metadata(path).get("model_id")
    if not isinstance(model_id, str) or not _FINGERPRINT_RE.match(model_id):
        raise AppError(422, "bad_model", BAD_MODEL_MESSAGE)
    return model_id


def data_hash_of(path: Path) -> str:
    """The data hash of a model `make train` built: its file name is that hash
    (scripts/train.sh); otherwise a digest of the file itself."""
    stem = path.name.removesuffix(".tar.gz")
    if re.fullmatch(r"[0-9a-f]{16}", stem):
        return stem
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def stored_path(model_id: int) -> Path:
    """Where the registry keeps model `model_id`'s archive."""
    return candidates_dir() / f"model-{model_id}.tar.gz"


def partial_path(model_id: int) -> Path:
    """The upload in progress (renamed into place once complete and checked)."""
    return candidates_dir() / f"model-{model_id}.tar.gz.part"


def copy_in(source: Path, model_id: int) -> Path:
    """Copy a model file into the registry's directory (atomic rename)."""
    target = stored_path(model_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(model_id)
    shutil.copyfile(source, part)
    part.replace(target)
    return target
