from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from backend.api.deps import DbSession

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(db: DbSession) -> dict[str, str]:
    db.execute(text("SELECT 1"))
    return {"status": "ok"}
