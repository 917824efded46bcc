"""How the pieces are wired (Docker cannot run here): Rasa's endpoints pull the live model
from the api with the service token, within the contract's 30 s, no `--model`; compose's api
registers the model `make train` built and keeps the registry's files in a volume; `make run`
registers the model, starts the api before Rasa and Rasa without `--model`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["endpoints.yml", "endpoints.prod.yml"])
def test_rasa_endpoints_pull_the_live_model_with_the_service_token(name):
    """`models:` → ${API_URL}/api/v1/models/live, `Authorization: Service ${SERVICE_TOKEN}`
    as a header (never a query token), a pull at least every 30 s; every ${VAR} unquoted
    (Rasa expands them only in plain scalars)."""
    text = (ROOT / "bot" / name).read_text(encoding="utf-8")
    models = yaml.safe_load(text)["models"]
    assert models["url"] == "${API_URL}/api/v1/models/live"
    assert models["headers"] == {"Authorization": "Service ${SERVICE_TOKEN}"}
    assert "token" not in models
    assert 1 <= int(models["wait_time_between_pulls"]) <= 30
    assert not re.search(r"""["']\$\{""", text), "quoted ${VAR}s are not expanded by Rasa"


def test_compose_rasa_pulls_from_the_api_and_the_api_registers_the_model():
    """Rasa: no --model, waits for a healthy api; api: bot/models read-only, the registry's
    folder in a volume, `register-live` before uvicorn."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    rasa, api = services["rasa"], services["api"]
    assert "--model" not in rasa["command"] and "endpoints.prod.yml" in rasa["command"]
    assert rasa["depends_on"]["api"]["condition"] == "service_healthy"
    assert {"API_URL", "SERVICE_TOKEN"} <= set(rasa["environment"])
    assert "./bot/models:/srv/bot/models:ro" in api["volumes"]
    assert "models:/srv/api/data/models" in api["volumes"] and "models" in compose["volumes"]
    script = api["command"][-1]
    assert script.index("alembic upgrade head") < script.index("register-live /srv/bot/models")
    assert script.index("register-live") < script.index("exec uvicorn")


def test_make_run_registers_the_model_and_starts_rasa_on_the_model_server():
    """scripts/run.sh: register-live with the model train.sh built, the api up before Rasa,
    Rasa without --model on bot/endpoints.yml, SERVICE_TOKEN exported for the pull."""
    run = (ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    assert 'app.modelhub.cli register-live "$ROOT/$MODEL"' in run
    assert run.index("bash scripts/train.sh") < run.index("register-live")
    rasa = next(line for line in run.splitlines() if "rasa run " in line and "actions" not in line)
    assert "--model" not in rasa
    assert run.index('wait_for "http://127.0.0.1:${API_PORT}/healthz"') < run.index(rasa)
    assert "--endpoints endpoints.yml" in run.split(rasa, 1)[1].splitlines()[1]
    assert 'export SERVICE_TOKEN="${SERVICE_TOKEN:-' in run
