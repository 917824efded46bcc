"""Mounts every area's router under /api/v1 (one line per area)."""

from fastapi import APIRouter

from app.petition.views import router as petition_router
from app.policy.views import router as policy_router
from app.staff.router import router as staff_router
from app.status.lookup_views import router as lookup_router
from app.status.views import router as status_router

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(petition_router)
api_router.include_router(policy_router)
api_router.include_router(status_router)
api_router.include_router(staff_router)
api_router.include_router(lookup_router)
