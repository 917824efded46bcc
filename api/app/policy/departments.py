"""Department codes and names for staff screens, read from the policy catalogue."""

from __future__ import annotations

from functools import lru_cache

import yaml

from app.core.config import settings


def _from_catalogue() -> dict[str, str] | None:
    try:
        from app.policy.catalogue import get_catalogue

        return {code: dept.name for code, dept in get_catalogue().departments.items()}
    except (ImportError, AttributeError):
        return None


@lru_cache(maxsize=1)
def _from_yaml() -> dict[str, str]:
    path = settings.policies_dir / "departments.yml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {d["code"]: d["name"] for d in data.get("departments") or []}


def departments() -> dict[str, str]:
    """Department code → Chinese name, in catalogue order."""
    found = _from_catalogue()
    return found if found is not None else _from_yaml()


def department_name(code: str | None) -> str:
    """The Chinese name of a department code (the code itself when unknown)."""
    if not code:
        return ""
    return departments().get(code, code)


def blocker_names() -> dict[str, str]:
    """Blocker code → Chinese name from the catalogue (empty when not loaded)."""
    try:
        from app.policy.catalogue import get_catalogue

        return {code: b.name for code, b in get_catalogue().blockers.items()}
    except (ImportError, AttributeError):
        return {}


def blocker_default_department(code: str) -> str | None:
    """The catalogue's default department code for a blocker code."""
    try:
        from app.policy.catalogue import get_catalogue

        dept = get_catalogue().default_department(code)
    except (ImportError, AttributeError, KeyError):
        return None
    if dept is None:
        return None
    return dept if isinstance(dept, str) else getattr(dept, "code", None)


def catalogue_setting(name: str, default: int) -> int:
    """An integer setting of the catalogue (e.g. first_answer_working_days), or the default."""
    try:
        from app.policy.catalogue import get_catalogue

        return int(getattr(get_catalogue().settings, name))
    except (ImportError, AttributeError, TypeError, ValueError):
        return default
