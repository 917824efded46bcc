"""Public petition endpoints (filled in below)."""

from fastapi import APIRouter

router = APIRouter(tags=["petitions"])
