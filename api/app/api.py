"""Mounts every area's router under /api/v1 (one line per area)."""

from fastapi import APIRouter

from app.dashboard.views import router as dashboard_router
from app.inbox.views import router as inbox_router
from app.ledger.views import router as ledger_router
from app.modelhub.views import router as model_router
from app.modelhub.views import staff_router as model_staff_router
from app.nlu.views import router as nlu_router
from app.nlu.views import staff_router as nlu_staff_router
from app.notify.views import router as conversation_router
from app.notify.views import staff_router as notify_staff_router
from app.petition.case_views import router as case_staff_router
from app.petition.staff_views import router as petition_staff_router
from app.petition.views import router as petition_router
from app.policy.views import router as policy_router
from app.staff.views import auth_router
from app.staff.views import router as staff_router
from app.status.staff_views import router as project_staff_router
from app.status.views import router as status_router

api_router = APIRouter(prefix="/api/v1")
# The residents' hot path, POST /api/v1/lookup, is on the app itself (app.main): matched first.
api_router.include_router(petition_router)
api_router.include_router(policy_router)
api_router.include_router(status_router)
api_router.include_router(auth_router)
api_router.include_router(staff_router)
api_router.include_router(case_staff_router)
api_router.include_router(petition_staff_router)
api_router.include_router(project_staff_router)
api_router.include_router(ledger_router)
api_router.include_router(dashboard_router)
api_router.include_router(conversation_router)
api_router.include_router(notify_staff_router)
api_router.include_router(inbox_router)
api_router.include_router(nlu_router)
api_router.include_router(nlu_staff_router)
api_router.include_router(model_staff_router)
api_router.include_router(model_router)
