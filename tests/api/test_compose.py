"""docker-compose.yml is valid and agrees with the code's settings (Docker cannot run here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from huey.storage import RedisStorage

from app.core.config import Settings
from app.jobs.queue import storage_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# Variables read by the official images themselves, not by our code.
IMAGE_VARIABLES = {"postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}}
# Services on the api image, configured through the api's Settings.
API_IMAGE_SERVICES = ("api", "worker")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _bot_sources() -> str:
    """Everything under bot/ the bot services read settings from (code and YAML)."""
    texts = []
    for path in (ROOT / "bot").rglob("*"):
        if ".venv" in path.parts or "models" in path.parts or not path.is_file():
            continue
        if path.suffix in {".py", ".yml", ".yaml", ".sh"}:
            texts.append(path.read_text(encoding="utf-8", errors="ignore"))
    return "\n".join(texts)


def test_compose_file_is_valid_against_the_compose_schema() -> None:
    """check-jsonschema with the vendored compose-spec schema accepts the file (offline)."""
    exe = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_variable_set_is_read_by_the_code() -> None:
    """Each service's environment names only variables its code (or image) reads."""
    services = _compose()["services"]
    api_fields = {name.upper() for name in Settings.model_fields}
    bot_text = _bot_sources()
    for name, service in services.items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        for var in env:
            if name in API_IMAGE_SERVICES:
                assert var in api_fields, f"{name} sets {var}, which Settings does not read"
            elif name in IMAGE_VARIABLES:
                assert var in IMAGE_VARIABLES[name], f"{name} sets unknown {var}"
            else:
                pattern = rf"(environ(\.get)?\(|getenv\(|\[)\s*['\"]{var}['\"]|\$\{{{var}[}}:]"
                assert re.search(pattern, bot_text), f"{name} sets {var}, which bot/ never reads"


def test_secrets_are_required_and_documented() -> None:
    """Every ${VAR} the file uses is documented in .env.example; secrets have no default."""
    text = COMPOSE.read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= documented, f"undocumented: {used - documented}"
    for secret in ("SECRET_KEY", "SERVICE_TOKEN", "ID_HASH_SECRET", "POSTGRES_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required (:?)"


def test_documented_api_variables_are_settings() -> None:
    """The api part of .env.example lists only real settings, and every setting is documented."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    api_part = example.split("# --- docker-compose only ---")[0]
    documented = set(re.findall(r"^([A-Z_]+)=", api_part, flags=re.M))
    fields = {name.upper() for name in Settings.model_fields}
    assert documented <= fields, documented - fields
    assert fields <= documented, f"settings missing from .env.example: {fields - documented}"


def test_ports_and_urls_agree() -> None:
    """The api listens where compose publishes it, and service URLs name real services."""
    services = _compose()["services"]
    api_env = services["api"]["environment"]
    assert f"{api_env['PORT']}:{api_env['PORT']}" in services["api"]["ports"]
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and "://" in value:
                host = re.sub(r"^[a-z+]+://([^@/]*@)?", "", value).split(":")[0].split("/")[0]
                assert host in services, f"{name}.{var} points at {host}, not a service"
            elif var.endswith("_HOST"):
                assert value in services, f"{name}.{var}={value} is not a service"
    assert Settings().port == 8000  # the design's port on the embedded default


@pytest.mark.parametrize("service", ["api"])
def test_production_refuses_placeholder_secrets(service: str) -> None:
    """Outside development the placeholder secrets are refused."""
    with pytest.raises(ValueError, match="SECRET"):
        Settings(environment="production")


def test_worker_runs_the_job_queue_beside_the_api() -> None:
    """The worker is the api image running the Huey consumer on the api's Redis queue, with the
    api's database and secrets (it decrypts the addresses the api stored)."""
    services = _compose()["services"]
    api, worker = services["api"], services["worker"]
    assert worker["build"] == api["build"]
    assert worker["command"] == ["python", "-m", "app.worker"]
    api_env, worker_env = api["environment"], worker["environment"]
    assert worker_env["JOB_QUEUE_URL"].startswith("redis://redis:")
    assert api_env["JOB_QUEUE_URL"] == worker_env["JOB_QUEUE_URL"]
    # The queue must not share a Redis database with the api's rate limits.
    assert api_env["REDIS_URL"] != worker_env["JOB_QUEUE_URL"]
    for var in ("DATABASE_URL", "SECRET_KEY", "SERVICE_TOKEN", "ID_HASH_SECRET", "RASA_URL"):
        assert worker_env[var] == api_env[var], var
    for needed in ("postgres", "redis"):
        assert worker["depends_on"][needed]["condition"] == "service_healthy"
    assert storage_for(worker_env["JOB_QUEUE_URL"])[0] is RedisStorage


def test_make_run_starts_the_worker() -> None:
    """scripts/run.sh starts the consumer with the api's environment and stops it with the rest."""
    run = (ROOT / "scripts" / "run.sh").read_text(encoding="utf-8")
    line = next(x for x in run.splitlines() if "app.worker" in x)
    assert "cd api" in line and ".venv/bin/python -m app.worker" in line
    after = run.split(line, 1)[1].lstrip().splitlines()[0]
    assert after == "pids+=($!)"
