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
from app.modelhub.config import ModelhubSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# Variables read by the official images themselves, not by our code.
IMAGE_VARIABLES = {"postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}}
# Services on the api image, configured through the api's Settings.
API_IMAGE_SERVICES = ("api", "worker", "sandbox-api")
# Every setting the api image reads from the environment.
API_FIELDS = {name.upper() for name in (*Settings.model_fields, *ModelhubSettings.model_fields)}


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
    bot_text = _bot_sources()
    for name, service in services.items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{name}: use the mapping form for environment"
        # A variable the service's own shell command reads ($$VAR in compose).
        command = " ".join(service.get("command") or [])
        for var in env:
            if name in API_IMAGE_SERVICES:
                assert var in API_FIELDS or f"$${var}" in command, (
                    f"{name} sets {var}, which Settings does not read"
                )
            elif name in IMAGE_VARIABLES:
                assert var in IMAGE_VARIABLES[name], f"{name} sets unknown {var}"
            else:
                read = r"((environ|env)(\.get)?\(|getenv\(|\[)"
                pattern = rf"{read}\s*['\"]{var}['\"]|\$\{{{var}[}}:]"
                assert re.search(pattern, bot_text), f"{name} sets {var}, which bot/ never reads"


def test_secrets_are_required_and_documented() -> None:
    """Every ${VAR} the file uses is documented in .env.example; secrets have no default."""
    text = COMPOSE.read_text(encoding="utf-8")
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.M))
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    assert used <= documented, f"undocumented: {used - documented}"
    for secret in ("SECRET_KEY", "SERVICE_TOKEN", "ID_HASH_SECRET", "POSTGRES_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", text), f"{secret} must be required (:?)"


def test_documented_api_variables_are_settings() -> None:
    """The api part of .env.example lists only real settings, and every setting is documented."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    api_part = example.split("# --- docker-compose only ---")[0]
    documented = set(re.findall(r"^([A-Z0-9_]+)=", api_part, flags=re.M))
    assert documented <= API_FIELDS, documented - API_FIELDS
    missing = API_FIELDS - documented
    assert not missing, f"settings missing from .env.example: {missing}"


def test_ports_and_urls_agree() -> None:
    """The api listens where compose publishes it, and service URLs name real services."""
    services = _compose()["services"]
    api_env = services["api"]["environment"]
    assert f"{api_env['PORT']}:{api_env['PORT']}" in services["api"]["ports"]
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and value.startswith("sqlite:"):
                continue  # a file inside the container
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


def _dockerfile_sources(name: str) -> list[str]:
    """What a Dockerfile copies from the build context (the repository root)."""
    text = (ROOT / name).read_text(encoding="utf-8")
    return [m.group(1).rstrip("/") for m in re.finditer(r"^COPY\s+(\S+)\s+\S+$", text, re.M)]


def _ignored(path: str) -> bool:
    """True when .dockerignore keeps `path` (relative to the root) out of the build context."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(path).parts
    for pattern in patterns:
        if pattern.startswith("**/"):
            if pattern[3:] in parts:
                return True
        elif path == pattern or path.startswith(pattern + "/"):
            return True
    return False


def test_the_trainer_runs_on_the_bot_image_on_the_api_training_queue() -> None:
    """docker-compose's trainer is the bot image running `python -m trainer` on the queue the
    api puts training jobs on (same storage and name), with the api's service token, and the
    files its default paths name are inside the image and the build context."""
    sys.path.insert(0, str(ROOT / "bot"))
    try:
        from trainer import config as trainer_config
    finally:
        sys.path.remove(str(ROOT / "bot"))
    services = _compose()["services"]
    trainer, api, rasa = services["trainer"], services["api"], services["rasa"]
    assert trainer["build"] == rasa["build"]
    assert trainer["build"]["dockerfile"] == "bot/Dockerfile"
    assert trainer["command"] == ["python", "-m", "trainer"]
    env, api_env = trainer["environment"], api["environment"]
    assert env["JOB_QUEUE_URL"] == api_env["JOB_QUEUE_URL"]
    assert env.get("JOB_QUEUE_NAME") == api_env.get("JOB_QUEUE_NAME")
    assert env["SERVICE_TOKEN"] == api_env["SERVICE_TOKEN"]
    assert env["API_URL"] == "http://api:" + api_env["PORT"]
    # The queue the trainer consumes is the one the api puts trainings on.
    settings = trainer_config.load(env)
    assert settings.queue_name == f"{Settings().job_queue_name}-training"
    # Inside the image the repository's layout is kept under /srv (bot/ at /srv/bot).
    copied = _dockerfile_sources("bot/Dockerfile")
    for path in (
        settings.config,
        settings.domain,
        settings.dialogue_data,
        settings.nlu_dir,
        settings.heldout_dir,
        settings.conversations_dir / "runner.py",
        settings.cases_dir,
    ):
        relative = path.relative_to(trainer_config.REPO_DIR).as_posix()
        assert path.exists(), relative
        assert any(relative == src or relative.startswith(src + "/") for src in copied), (
            f"bot/Dockerfile does not copy {relative}"
        )
        assert not _ignored(relative), f".dockerignore drops {relative}"


def test_the_sandbox_api_is_throwaway_and_has_its_own_secrets() -> None:
    """The trainer plays the conversation suite against a separate api on its own SQLite file
    with the demo ledger; it shares no database, queue or secret with the real api."""
    services = _compose()["services"]
    sandbox, api, trainer = services["sandbox-api"], services["api"], services["trainer"]
    assert sandbox["build"] == api["build"]
    env, api_env, trainer_env = sandbox["environment"], api["environment"], trainer["environment"]
    assert env["DATABASE_URL"].startswith("sqlite:")
    assert env["JOB_QUEUE_URL"].startswith("sqlite:")
    assert "ports" not in sandbox  # never published
    for secret in ("SECRET_KEY", "SERVICE_TOKEN", "ID_HASH_SECRET"):
        assert env[secret] != api_env[secret], secret
    assert trainer_env["TRAINER_SANDBOX_API_URL"] == "http://sandbox-api:" + env["PORT"]
    assert trainer_env["TRAINER_SANDBOX_SERVICE_TOKEN"] == env["SERVICE_TOKEN"]
    command = " ".join(sandbox["command"])
    assert "load-demo" in command and "rm -f /tmp/sandbox.db" in command
    username = trainer_env["TRAINER_SANDBOX_STAFF_USERNAME"]
    assert f"--username {username} --role clerk" in command
    assert trainer["depends_on"]["sandbox-api"]["condition"] == "service_healthy"


def test_the_api_image_has_the_nlu_data_the_inbox_exports_against() -> None:
    """The api deduplicates annotations against nlu_data/ (training and held-out sets)."""
    assert "nlu_data" in _dockerfile_sources("api/Dockerfile")
    assert not _ignored("nlu_data/test")
    assert (ROOT / Settings().nlu_data_dir.relative_to(ROOT) / "test").is_dir()
