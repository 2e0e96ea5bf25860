"""The backend's HTTP application."""

from __future__ import annotations

from fastapi import FastAPI

from backend.api import body_limit, errors
from backend.api.routes import auth, call_logs, cases, health, sms, staff, transcripts
from backend.console import app as console
from backend.core.config import get_settings


def create_app() -> FastAPI:
    app = FastAPI(
        title="Didehban",
        description="Public-oversight hotline backend: cases, referrals, deadlines, reports.",
        version="0.1.0",
    )
    errors.install(app)
    settings = get_settings()
    body_limit.install(app, settings.max_request_bytes, upload_bytes=settings.max_upload_bytes)
    app.include_router(health.router)
    app.include_router(cases.router)
    app.include_router(auth.router)
    app.include_router(staff.router)
    app.include_router(sms.router)
    app.include_router(call_logs.router)
    console.install(app)
    app.include_router(transcripts.router)
    return app
