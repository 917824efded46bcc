"""Check audit/ignore.toml against the bot environment; print the pip-audit ignore ids.

Every entry must still be true: its package in bot/requirements.lock at exactly its version, and
the distribution it names in `pinned_by` (installed in bot/.venv) must require that package with a
specifier that excludes the fixed release. An entry that is no longer forced — Rasa gone, the pin
loosened, the package upgraded — is an error, so the ignore list cannot outlive its reason.

Usage: api/.venv/bin/python scripts/audit_ignores.py [IGNORE_FILE] → one id per line on stdout.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BOT_PY = ROOT / "bot/.venv/bin/python"
ID_RE = re.compile(r"^(GHSA(-[0-9a-z]{4}){3}|PYSEC-\d{4}-\d+|CVE-\d{4}-\d+)$")
REQUIRED = ("id", "package", "version", "fixed", "pinned_by", "reason", "exposure")


def read_lock(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def bot_environment() -> tuple[list[str], dict[str, str]]:
    """The bot venv's sys.path and marker environment (Python 3.10: markers differ from ours)."""
    code = (
        "import json, sys; from packaging.markers import default_environment; "
        "print(json.dumps([sys.path, default_environment()]))"
    )
    out = subprocess.run([str(BOT_PY), "-c", code], check=True, capture_output=True, text=True)
    path, env = json.loads(out.stdout)
    return path, env


def check(entries: list[dict[str, object]], lock: dict[str, str]) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    ids: list[str] = []
    path, env = bot_environment()
    dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=path)}
    for n, entry in enumerate(entries, 1):
        where = f"entry {n} ({entry.get('id', '?')})"
        missing = [k for k in REQUIRED if not str(entry.get(k, "")).strip()]
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}")
            continue
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list):
            errors.append(f"{where}: aliases must be a list")
            continue
        for vid in [str(entry["id"]), *map(str, aliases)]:
            if not ID_RE.match(vid):
                errors.append(f"{where}: {vid!r} is not a GHSA-/PYSEC-/CVE- id")
            elif vid in ids:
                errors.append(f"{where}: {vid} listed twice")
            else:
                ids.append(vid)
        package = canonicalize_name(str(entry["package"]))
        version = str(entry["version"])
        if lock.get(package) != version:
            errors.append(
                f"{where}: bot/requirements.lock has {package}=={lock.get(package)}, "
                f"not {version}: remove or update the entry"
            )
        owner = dists.get(canonicalize_name(str(entry["pinned_by"])))
        if owner is None:
            errors.append(f"{where}: {entry['pinned_by']} is not installed in bot/.venv")
            continue
        specs = [
            req.specifier
            for req in map(Requirement, owner.requires or [])
            if canonicalize_name(req.name) == package
            and (req.marker is None or req.marker.evaluate({**env, "extra": ""}))
        ]
        fixed = Version(str(entry["fixed"]))
        if Version(version) >= fixed:
            errors.append(f"{where}: {version} is not below the fixed release {fixed}")
        if not specs:
            errors.append(f"{where}: {entry['pinned_by']} does not require {package}")
        elif all(spec.contains(fixed, prereleases=True) for spec in specs):
            errors.append(
                f"{where}: {entry['pinned_by']} allows {package} {fixed} "
                f"({', '.join(map(str, specs))}): upgrade it in bot/requirements.lock instead"
            )
    return ids, errors


def main() -> int:
    ignore_file = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "audit/ignore.toml"
    entries = tomllib.loads(ignore_file.read_text(encoding="utf-8")).get("ignore", [])
    ids, errors = check(entries, read_lock(ROOT / "bot/requirements.lock"))
    for error in errors:
        print(f"{ignore_file.name}: {error}", file=sys.stderr)
    if errors:
        return 1
    print("\n".join(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
