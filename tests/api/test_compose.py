"""docker-compose.yml is valid and agrees with the code's settings (Docker cannot run here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# Variables read by the official images themselves, not by our code.
IMAGE_VARIABLES = {"postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}}


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
            if name == "api":
                assert var in api_fields, f"api sets {var}, which Settings does not read"
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
