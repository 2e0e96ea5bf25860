"""Staff log in with a username and password and get a session token; they log out to end it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from backend.api.deps import AppSettings, DbSession, Now, current_session
from backend.api.errors import ApiError, error_responses
from backend.api.schemas import RequestBody
from backend.api.throttling import Throttle, Throttling, client_address, enforce, too_many
from backend.core.config import Settings
from backend.core.security import (
    hash_password,
    issue_session_token,
    new_session_id,
    password_needs_rehash,
    spend_password_work,
    verify_password,
)
from backend.models import AccountEvent, StaffSession, User
from backend.workflow.staff import end_sessions

router = APIRouter(prefix="/api/v1/auth", tags=["staff"], responses=error_responses(400, 401, 413, 422, 429))
SESSION = dt.timedelta(hours=10)  # a working day


class LoginIn(RequestBody):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class LoginOut(BaseModel):
    token: str
    expires_at: str
    role: str
    unit: str | None


def _username_key(username: str) -> str:
    # Case and spacing variants of one name share one budget.
    return username.strip().casefold()


@dataclass(frozen=True)
class LoggedIn:
    token: str
    expires_at: dt.datetime
    user: User


def authenticate(
    db: Session,
    settings: Settings,
    throttle: Throttle,
    address: str,
    username: str,
    password: str,
    now: dt.datetime,
) -> LoggedIn:
    """Check a username and password under the login limits and open a session (the API's login and
    the console's login form alike). Raises ApiError 401/429."""
    user_key = _username_key(username)
    enforce(throttle, [(settings.login_attempts_per_address, ("login", address))], "login attempts")
    # Back-off: once a username or an address has failed too often, it waits before any new try,
    # and the password is not even checked (known and unknown names alike, so it tells nothing).
    waits = [
        w
        for notation, key in (
            (settings.login_failures_per_user, ("login-failed-user", user_key)),
            (settings.login_failures_per_address, ("login-failed-address", address)),
        )
        if (w := throttle.wait_seconds(notation, *key)) is not None
    ]
    if waits:
        raise too_many(max(waits), "failed logins")

    user = db.scalar(select(User).where(User.username == username))
    if user is None or not user.password_hash:
        spend_password_work(password)  # an unknown name takes as long as a wrong password
        valid = False
    else:
        valid = verify_password(password, user.password_hash)
    if not valid:
        throttle.count(settings.login_failures_per_user, "login-failed-user", user_key)
        throttle.count(settings.login_failures_per_address, "login-failed-address", address)
        if user is not None:
            db.add(
                AccountEvent(
                    user_id=user.id,
                    action="login_failed",
                    actor=user.username,
                    at=now,
                    note=f"from {address}",
                )
            )
            db.commit()
        raise ApiError(401, "bad_credentials", "wrong username or password")
    throttle.forget(settings.login_failures_per_user, "login-failed-user", user_key)

    if user.password_revoked_at is not None:
        db.add(
            AccountEvent(
                user_id=user.id, action="login_refused", actor=user.username, at=now, note="password revoked"
            )
        )
        db.commit()
        raise ApiError(401, "password_revoked", "the password was revoked: ask the system administrator")
    if not user.is_active:
        raise ApiError(401, "bad_credentials", "wrong username or password")
    if password_needs_rehash(user.password_hash):
        # An older format (scrypt) or weaker parameters: upgraded now that the password is known.
        user.password_hash = hash_password(password)
    db.execute(delete(StaffSession).where(StaffSession.user_id == user.id, StaffSession.expires_at < now))
    expires = now + SESSION
    session_id = new_session_id()
    db.add(StaffSession(session_id=session_id, user_id=user.id, created_at=now, expires_at=expires))
    db.commit()
    token = issue_session_token(user.id, session_id, settings.session_key, expires.timestamp())
    return LoggedIn(token=token, expires_at=expires, user=user)


@router.post("/login", response_model=LoginOut)
def login(
    body: LoginIn, request: Request, db: DbSession, settings: AppSettings, now: Now, throttle: Throttling
) -> LoginOut:
    done = authenticate(db, settings, throttle, client_address(request), body.username, body.password, now)
    return LoginOut(
        token=done.token,
        expires_at=done.expires_at.isoformat(),
        role=done.user.role,
        unit=done.user.unit.code if done.user.unit else None,
    )


class LogoutIn(RequestBody):
    everywhere: bool = Field(default=False, description="end every session of this user, not only this one")


class LogoutOut(BaseModel):
    ended: int


@router.post("/logout", response_model=LogoutOut)
def logout(
    db: DbSession,
    now: Now,
    staff_session: Annotated[StaffSession, Depends(current_session)],
    body: LogoutIn | None = None,
) -> LogoutOut:
    user = db.get(User, staff_session.user_id)
    everywhere = body is not None and body.everywhere
    ended = end_sessions(
        db,
        user,
        now=now,
        reason="logout_all" if everywhere else "logout",
        only=None if everywhere else staff_session.session_id,
    )
    db.commit()
    return LogoutOut(ended=ended)
