"""Staff log in with a username and password and get a session token."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from backend.api.deps import AppSettings, DbSession, Now
from backend.api.errors import ApiError
from backend.core.security import issue_session_token, verify_password
from backend.models import AccountEvent, User

router = APIRouter(prefix="/api/v1/auth", tags=["staff"])
SESSION = dt.timedelta(hours=10)  # a working day


class LoginIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


@router.post("/login")
def login(body: LoginIn, db: DbSession, settings: AppSettings, now: Now) -> dict[str, Any]:
    user = db.scalar(select(User).where(User.username == body.username))
    if user is None or not user.password_hash or not verify_password(body.password, user.password_hash):
        raise ApiError(401, "bad_credentials", "wrong username or password")
    if user.password_revoked_at is not None:
        db.add(
            AccountEvent(
                user_id=user.id, action="login_refused", actor=user.username, at=now, note="password revoked"
            )
        )
        db.commit()
        raise ApiError(401, "password_revoked", "the password was revoked: ask the system administrator")
    expires = now + SESSION
    return {
        "token": issue_session_token(user.id, settings.session_key, expires.timestamp()),
        "expires_at": expires.isoformat(),
        "role": user.role,
        "unit": user.unit.code if user.unit else None,
    }
