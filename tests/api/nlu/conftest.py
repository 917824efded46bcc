"""NLU inbox tests: a client whose requests commit like production (inside the test's outer
transaction), the bot's service headers, staff tokens, and NLU data in a temp directory so an
export never writes into the repository."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from nlu.nlukit import SENDER, service
from sqlalchemy.orm import Session
from staff.staffkit import bearer, make_user

from app.core.config import settings
from app.core.database import get_db


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    """TestClient over the rolled-back test session; each request commits its savepoint."""
    from app.main import app

    def _override() -> Iterator[Session]:
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)


@pytest.fixture
def observe(client: TestClient) -> Callable[..., dict[str, Any]]:
    """`observe(text, **fields)` posts an observation as the bot; the JSON answer."""

    def post(text: str, sender: str = SENDER, **fields: Any) -> dict[str, Any]:
        body = {
            "text": text,
            "predicted_intent": "nlu_fallback",
            "confidence": 0.3,
            "reason": "fallback",
            "channel": "webchat",
            **fields,
        }
        r = client.post("/api/v1/nlu/observations", json=body, headers=service(sender))
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    return post


@pytest.fixture
def staff(db: Session) -> Callable[[str], dict[str, str]]:
    """`staff(role)` → bearer headers of a new account with that role."""

    def headers(role: str) -> dict[str, str]:
        user = make_user(db, role)
        token = bearer(db, user)
        db.commit()
        return token

    return headers


@pytest.fixture
def maintainer(staff: Callable[[str], dict[str, str]]) -> dict[str, str]:
    """Bearer headers of a maintainer."""
    return staff("maintainer")


TRAINING = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 您好啊
- intent: ask_certificate_status
  examples: |
    - [观象山庄3号楼](address)的房本啥时候能办
"""
HELD_OUT = """version: "3.1"
nlu:
- intent: ask_materials
  examples: |
    - 办房本要带哪些东西
- intent: ask_certificate_status
  examples: |
    - [幸福里小区5号楼](address)的房本卡在哪
"""


@pytest.fixture
def nlu_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A small nlu_data/ (one training file, a held-out test/ file written for these tests)
    and the export folder inside it, as settings; (data dir, export dir)."""
    data = tmp_path / "nlu_data"
    (data / "test").mkdir(parents=True)
    (data / "basics.yml").write_text(TRAINING, encoding="utf-8")
    (data / "test" / "held.yml").write_text(HELD_OUT, encoding="utf-8")
    export = data / "inbox"
    monkeypatch.setattr(settings, "nlu_data_dir", data)
    monkeypatch.setattr(settings, "nlu_export_dir", export)
    return data, export
