"""Public policy endpoints: the catalogue, and one blocker or FAQ topic by code."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from app.core.errors import AppError
from app.policy import service as policy_service
from app.policy.catalogue import CatalogueError, get_catalogue
from app.policy.schemas import CatalogueBlockerRead, CatalogueFaqRead, CatalogueRead

log = logging.getLogger("app.policy")


@asynccontextmanager
async def _load_catalogue_at_startup(_app: FastAPI) -> AsyncIterator[None]:
    """Refuse to start when policies/ is invalid, with the file and field in the message."""
    try:
        get_catalogue()
    except CatalogueError as exc:
        log.critical("policy catalogue is invalid, refusing to start: %s", exc)
        raise
    yield


router = APIRouter(tags=["policies"], lifespan=_load_catalogue_at_startup)


@router.get("/policies", response_model=CatalogueRead)
def list_policies() -> dict[str, Any]:
    """The whole catalogue: blocker types, FAQ topics, departments, policies, guidance."""
    return policy_service.list_all()


@router.get("/policies/{code}", response_model=CatalogueBlockerRead | CatalogueFaqRead)
def get_policy(code: str) -> dict[str, Any]:
    """One blocker type or FAQ topic by its code."""
    entry = policy_service.get_entry(code)
    if entry is None:
        raise AppError(404, "policy_not_found", "没有找到这个政策条目，请核对代码。")
    return entry
