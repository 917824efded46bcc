"""Every staff router (auth, accounts, petitions, projects, dashboard), mounted under /api/v1."""

from fastapi import APIRouter

from app.dashboard.views import router as dashboard_router
from app.petition.staff_views import router as petition_staff_router
from app.staff.views import auth_router
from app.staff.views import router as staff_router

router = APIRouter()
router.include_router(auth_router)
router.include_router(staff_router)
router.include_router(petition_staff_router)
router.include_router(dashboard_router)
