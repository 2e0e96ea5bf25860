"""Dependencies shared by the routes: the database session, the identity vault, who is calling."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.errors import ApiError
from backend.core.config import Settings, get_settings
from backend.core.db import get_sessionmaker
from backend.core.security import IdentityVault, InvalidSession, read_session_token, tokens_match
from backend.models import StaffSession, User


def _end(session: Session, ok: bool) -> None:
    try:
        if ok:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_db() -> AsyncIterator[Session]:
    """A session for the route, which runs in the thread pool. Opening one does no I/O, and a route
    that committed leaves nothing to do after it, so neither end costs a thread hop of its own; only
    a transaction still open at the end is finished in the pool (issue 13: fewer hops a request).

    Write routes commit before they answer: the code after `yield` may run after the response is
    sent, too late for a client that acts on the answer at once."""
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        # A refusal raised before the route touched the database (a 401, a 422, a 429) leaves
        # nothing to roll back: closing is no I/O, so no hop for it either.
        if session.in_transaction():
            await run_in_threadpool(_end, session, False)
        else:
            session.close()
        raise
    if session.in_transaction():
        await run_in_threadpool(_end, session, True)
    else:
        session.close()


async def app_settings() -> Settings:
    # async: a plain function dependency would be run in the thread pool, a hop for a cached value.
    return get_settings()


# One vault per pair of keys, not one a request: building its Fernet cost about 1 % of a status
# look-up (issue 13). Keyed by the keys themselves, so new keys (a test's, a restart's) get a new one.
_vault_for = lru_cache(maxsize=8)(IdentityVault.from_keys)


async def get_vault(settings: Annotated[Settings, Depends(app_settings)]) -> IdentityVault:
    return _vault_for(settings.secret_key, settings.lookup_key)


async def get_now() -> dt.datetime:
    """The clock, as a dependency so tests can move it."""
    return dt.datetime.now(dt.UTC)


# Security schemes, so the API's description says who may call what; auto_error is off because a
# missing token must answer our own 401 body, not FastAPI's 403.
ivr_bearer = HTTPBearer(
    scheme_name="ivrToken", description="the IVR nodes' token (DIDEHBAN_IVR_TOKEN)", auto_error=False
)
staff_bearer = HTTPBearer(
    scheme_name="staffSession", description="a staff session token from /api/v1/auth/login", auto_error=False
)
gateway_bearer = HTTPBearer(
    scheme_name="smsGateway",
    description="the SMS gateway's secret (DIDEHBAN_SMS_INBOUND_SECRET)",
    auto_error=False,
)
Credentials = HTTPAuthorizationCredentials | None


def bearer_token(credentials: Credentials) -> str:
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "a bearer token is required")
    return credentials.credentials.strip()


async def require_ivr(
    settings: Annotated[Settings, Depends(app_settings)],
    credentials: Annotated[Credentials, Depends(ivr_bearer)],
) -> None:
    if not tokens_match(bearer_token(credentials), settings.ivr_token):
        raise ApiError(401, "unauthorized", "the IVR token is not valid")


DbSession = Annotated[Session, Depends(get_db)]
Vault = Annotated[IdentityVault, Depends(get_vault)]
Now = Annotated[dt.datetime, Depends(get_now)]
AppSettings = Annotated[Settings, Depends(app_settings)]


def session_for_token(db: Session, settings: Settings, now: dt.datetime, token: str) -> StaffSession:
    """The open session behind a token: a signed token is not enough once its session has ended
    (logout, a password reset, a revocation). The API's bearer token and the console's cookie
    carry the same token."""
    try:
        claims = read_session_token(token, settings.session_key, now.timestamp())
    except InvalidSession as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None
    row = db.scalar(select(StaffSession).where(StaffSession.session_id == claims.session_id))
    if row is None or row.user_id != claims.user_id:
        raise ApiError(401, "unauthorized", "the session token is not valid")
    if row.ended_at is not None:
        raise ApiError(401, "session_ended", "this session has ended: log in again")
    return row


def user_of_session(db: Session, staff_session: StaffSession) -> User:
    """The staff member behind an open session; a revoked password ends every session (R14)."""
    user = db.get(User, staff_session.user_id)
    if user is None or not user.is_active:
        raise ApiError(401, "unauthorized", "this account is not active")
    if user.password_revoked_at is not None:
        raise ApiError(401, "password_revoked", "the password was revoked: ask the system administrator")
    return user


def current_session(
    db: DbSession,
    settings: AppSettings,
    now: Now,
    credentials: Annotated[Credentials, Depends(staff_bearer)],
) -> StaffSession:
    return session_for_token(db, settings, now, bearer_token(credentials))


def current_user(
    db: DbSession,
    staff_session: Annotated[StaffSession, Depends(current_session)],
) -> User:
    """The staff member behind a session token."""
    return user_of_session(db, staff_session)
