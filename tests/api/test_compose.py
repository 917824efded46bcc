"""docker-compose.yml is valid and agrees with the code's settings (Docker cannot run here)."""

from __future__ import annotations

import ipaddress
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
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
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


# Variables Rasa reads itself, and where (its lock store's ticket lifetime).
RASA_READS = {"TICKET_LOCK_LIFETIME": "rasa/core/lock_store.py"}


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
            elif name == "proxy":
                caddyfile = CADDYFILE.read_text(encoding="utf-8")
                assert "{$" + var in caddyfile, f"proxy sets {var}, which the Caddyfile never reads"
            elif var in RASA_READS:
                # Read by Rasa itself: checked in the installed package (make install).
                source = next(ROOT.glob(f"bot/.venv/lib/python3*/site-packages/{RASA_READS[var]}"))
                text = source.read_text(encoding="utf-8")
                assert f'"{var}"' in text, f"Rasa no longer reads {var}"
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
    """The api listens where the proxy sends it, and service URLs name real services."""
    services = _compose()["services"]
    api_env = services["api"]["environment"]
    assert api_env["PORT"] in services["api"]["expose"]
    assert f"reverse_proxy api:{api_env['PORT']}" in CADDYFILE.read_text(encoding="utf-8")
    for name, service in services.items():
        for var, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and value.startswith("sqlite:"):
                continue  # a file inside the container
            if isinstance(value, str) and "://" in value:
                host = re.sub(r"^[a-z+]+://([^@/]*@)?", "", value).split(":")[0].split("/")[0]
                assert host in services, f"{name}.{var} points at {host}, not a service"
            elif var.endswith("_HOST") and var != "PUBLIC_HOST":  # the proxy's domain
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


def test_only_the_proxy_publishes_ports_and_it_publishes_80_and_443() -> None:
    """Residents, staff and WeChat reach the stack on 80/443 of the proxy only; the api, Rasa,
    the action server and the rest publish nothing (the embedded default's 127.0.0.1 ports are
    `make run`'s, not compose's)."""
    services = _compose()["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"proxy"}
    ports = {str(p).split("/")[0] for p in published["proxy"]}
    assert ports == {"80:80", "443:443"}
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:2")
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"


def test_trusted_proxies_is_the_proxys_fixed_address() -> None:
    """The api believes X-Forwarded-For from the proxy's fixed address only: inside the
    declared subnet, outside the pool Docker hands other containers' addresses from."""
    from app.core.proxies import parse_networks

    compose = _compose()
    services = compose["services"]
    address = services["proxy"]["networks"]["default"]["ipv4_address"]
    trusted = services["api"]["environment"]["TRUSTED_PROXIES"]
    assert "trusted_proxies" in Settings.model_fields
    assert [str(n) for n in parse_networks(trusted)] == [f"{address}/32"]
    (pool,) = compose["networks"]["default"]["ipam"]["config"]
    ip = ipaddress.ip_address(address)
    assert ip in ipaddress.ip_network(pool["subnet"])
    assert ip not in ipaddress.ip_network(pool["ip_range"])
    assert ip != ipaddress.ip_address(pool["gateway"])
    # No other api-image service sits behind the proxy.
    for name in API_IMAGE_SERVICES:
        if name != "api":
            assert "TRUSTED_PROXIES" not in services[name]["environment"], name


# Long-running services and what their health check must name.
HEALTH_PROBES = {
    "postgres": "pg_isready",
    "redis": "redis-cli",
    "api": "http://127.0.0.1:{api}/healthz",
    "sandbox-api": "http://127.0.0.1:{api}/healthz",
    "worker": "app.jobs.heartbeat",
    "rasa": "http://127.0.0.1:{rasa}/webhooks/wechat/",
    "actions": "http://127.0.0.1:{actions}/health",
    "trainer": "trainer.heartbeat",
    "proxy": "http://127.0.0.1:2019/config/",
}


def _port_of(service: dict) -> str:
    command = service["command"]
    return command[command.index("--port") + 1]


def test_every_long_running_service_has_a_health_check() -> None:
    """Each service has a health check probing its own port or heartbeat, and every
    depends_on waits for a dependency's health (a service without one cannot be waited on)."""
    services = _compose()["services"]
    assert set(services) == set(HEALTH_PROBES), "a new service needs a health check here"
    ports = {
        "api": services["api"]["environment"]["PORT"],
        "rasa": _port_of(services["rasa"]),
        "actions": _port_of(services["actions"]),
    }
    assert services["sandbox-api"]["environment"]["PORT"] == ports["api"]
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        test = check["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), name
        assert HEALTH_PROBES[name].format(**ports) in " ".join(test), name
        for needed, how in (service.get("depends_on") or {}).items():
            assert how["condition"] == "service_healthy", f"{name} → {needed}"
    # The Caddyfile keeps the admin endpoint the proxy's check reads.
    assert "admin 127.0.0.1:2019" in CADDYFILE.read_text(encoding="utf-8")


def test_the_rasa_replicas_share_the_api_model_server() -> None:
    """Every Rasa replica starts without a model of its own and pulls the live one from the
    api's model server over the internal network (the proxy does not serve that route)."""
    services = _compose()["services"]
    rasa, api = services["rasa"], services["api"]
    assert "--model" not in rasa["command"]
    endpoints_file = rasa["command"][rasa["command"].index("--endpoints") + 1]
    endpoints = yaml.safe_load((ROOT / "bot" / endpoints_file).read_text(encoding="utf-8"))
    assert endpoints["models"]["url"] == "${API_URL}/api/v1/models/live"
    assert "${SERVICE_TOKEN}" in endpoints["models"]["headers"]["Authorization"]
    assert rasa["environment"]["API_URL"] == "http://api:" + api["environment"]["PORT"]
    assert rasa["environment"]["SERVICE_TOKEN"] == api["environment"]["SERVICE_TOKEN"]
    assert rasa["depends_on"]["api"]["condition"] == "service_healthy"
    assert rasa["deploy"]["replicas"] >= 2
    assert "/api/v1/models/*" in CADDYFILE.read_text(encoding="utf-8")
