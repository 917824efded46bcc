"""One JSON file of figures per `make bench` run, so runs can be compared over time.

    from results import record                      # bench/ is the script's directory
    record("lookup", {"rps": 612.0, "hello_rps": 1990.0, "ratio": 0.31}, goals={"ratio": ">= 0.30"})

`bench/run_all.sh` sets BENCH_RESULTS to bench/results/<UTC time>.json for the whole run; a bench
run on its own writes bench/results/<section>-<UTC time>.json. bench/results/ is git-ignored.
Each section holds its figures, the goals they are held to (as text) and the machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _path(section: str) -> Path:
    explicit = os.environ.get("BENCH_RESULTS")
    if explicit:
        return Path(explicit)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RESULTS_DIR / f"{section}-{stamp}.json"


def _machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def record(section: str, figures: dict[str, Any], *, goals: dict[str, str] | None = None) -> Path:
    """Add (or replace) `section` in this run's JSON file; returns the file's path."""
    path = _path(section)
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    data.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    data["machine"] = _machine()
    sections = data.setdefault("sections", {})
    sections[section] = {
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": figures,
        "goals": goals or {},
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)
    return path
