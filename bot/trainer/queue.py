"""The Huey instance of the training queue: the api's job storage (`JOB_QUEUE_URL`, a SQLite
file or Redis) under the queue name `<JOB_QUEUE_NAME>-training`.

The storage rules are the api's (api/app/jobs/queue.py): `sqlite:///<path>` with a relative
path taken from the api directory, `redis://host:port/db` with blocking pops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huey import Huey
from huey.storage import BaseStorage, RedisStorage, SqliteStorage

from trainer.config import API_DIR


def storage_for(url: str) -> tuple[type[BaseStorage], dict[str, Any]]:
    """The Huey storage class and its arguments for a queue URL (as the api reads it)."""
    if url.startswith("sqlite:"):
        raw = url.split(":///", 1)[1] if ":///" in url else ""
        if not raw:
            raise ValueError("JOB_QUEUE_URL: sqlite:///<path> needs a file path")
        path = Path(raw)
        if not path.is_absolute():
            path = API_DIR / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStorage, {"filename": str(path)}
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage, {"url": url, "blocking": True, "read_timeout": 1}
    raise ValueError("JOB_QUEUE_URL must start with sqlite:/// or redis://")


def make_huey(url: str, name: str) -> Huey:
    """A Huey instance on the storage of `url` named `name` (no results kept: the job reports
    to the api)."""
    storage_class, kwargs = storage_for(url)
    return Huey(name, results=False, utc=True, storage_class=storage_class, **kwargs)


def is_redis(huey: Huey) -> bool:
    """True when the queue lives in Redis."""
    return isinstance(huey.storage, RedisStorage)
