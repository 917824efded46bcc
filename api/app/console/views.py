"""The staff console at /console: server-rendered Chinese pages (Jinja2, htmx, no build step).

One module per screen; this one only mounts them.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from app.console import (
    accounts,
    cases,
    conversations,
    dashboard,
    inbox,
    intake,
    ledger,
    login,
    models,
    nlu,
    petitions,
    procedure,
    projects,
    quality,
)
from app.console.common import STATIC_DIR

router = APIRouter(include_in_schema=False)
SCREENS = (
    login,
    intake,
    inbox,
    petitions,
    procedure,
    cases,
    conversations,
    projects,
    ledger,
    dashboard,
    accounts,
    quality,
    nlu,
    models,
)
for screen in SCREENS:
    router.include_router(screen.router)
static_files = StaticFiles(directory=str(STATIC_DIR))
