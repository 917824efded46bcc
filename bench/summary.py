"""Print a bench run's figures against their goals, from its JSON file (bench/results.py).

    api/.venv/bin/python bench/summary.py [bench/results/<run>.json]   (default: the newest)

A goal is text such as ">= 0.30", "< 20" or "< 500 per page"; its key names a figure of the
section, dotted for nested ones ("demo.p95_ms"). A key that names no figure is checked against
every figure of that name in the section ("p95_ms": each page's p95). Exits 1 when a goal is
missed, so `make bench` tells at a glance.
"""

from __future__ import annotations

import json
import operator
import re
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
GOAL = re.compile(r"^\s*(>=|<=|>|<)\s*([0-9.]+)")


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key, inner in value.items():
            out.extend(_leaves(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, value)]


def check(figures: dict[str, Any], key: str, goal: str) -> list[tuple[str, Any, bool | None]]:
    """(figure, value, met) for one goal; met is None when the goal is not numeric."""
    leaves = _leaves(figures)
    hits = [(k, v) for k, v in leaves if k == key] or [
        (k, v) for k, v in leaves if k.rsplit(".", 1)[-1] == key
    ]
    match = GOAL.match(goal)
    out = []
    for name, value in hits:
        met = None
        if match and isinstance(value, int | float) and not isinstance(value, bool):
            met = OPS[match.group(1)](float(value), float(match.group(2)))
        out.append((name, value, met))
    return out


def main(argv: list[str]) -> int:
    """Print every section; exit 1 if a numeric goal is missed."""
    if argv:
        path = Path(argv[0])
    else:
        runs = sorted(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            print("no results yet: run make bench", file=sys.stderr)
            return 2
        path = runs[-1]
    if not path.exists():
        print(f"{path}: no figures were recorded", file=sys.stderr)
        return 1
    data = json.loads(path.read_text(encoding="utf-8"))
    missed = 0
    print(f"\n## summary of {path.name} ({data.get('machine', {}).get('cpus')} cores)")
    for section, body in data.get("sections", {}).items():
        goals: dict[str, str] = body.get("goals", {})
        if not goals:
            continue
        print(f"\n[{section}]")
        for key, goal in goals.items():
            rows = check(body.get("figures", {}), key, goal)
            if not rows:
                print(f"  {key:<44} {'(not measured)':>14}   goal {goal}   MISSING")
                missed += 1
            for name, value, met in rows:
                verdict = "ok" if met else ("MISSED" if met is False else "")
                missed += met is False
                shown = (
                    f"{value:,.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else value
                )
                print(f"  {name:<44} {shown!s:>14}   goal {goal}   {verdict}")
    print(f"\n{'every goal met' if not missed else f'{missed} goal(s) missed'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
