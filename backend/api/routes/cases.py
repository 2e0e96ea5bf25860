"""The IVR's contract: file a case, read a case's status."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from backend.api.deps import AppSettings, DbSession, Now, Vault, require_ivr
from backend.api.errors import ApiError, error_responses
from backend.api.schemas import RequestBody
from backend.api.throttling import Throttle, Throttling, client_address, enforce
from backend.core.config import Settings
from backend.core.security import IdentityVault
from backend.models import Case
from backend.services.intake import IntakeError, NewCase, normalise_phone, register_case
from backend.services.profiles import UnknownService, get_profile
from backend.services.status import CaseStatusOut, case_status, is_owner
from backend.workflow.citizen import CitizenActError, escalate_case, rate_case
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

router = APIRouter(
    prefix="/api/v1/cases",
    tags=["cases"],
    dependencies=[Depends(require_ivr)],
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429),
)


class CaseIn(RequestBody):
    service: str = Field(examples=["1482"])
    kind: str = Field(examples=["complaint"])
    urgent: bool = False
    national_id: str | None = Field(default=None, examples=["0013542419"])
    caller_number: str | None = Field(default=None, examples=["09121234567"])
    channel: str = "phone"
    description: str | None = Field(default=None, max_length=20000)
    call_id: str | None = Field(default=None, max_length=80)
    category: str | None = None
    tracking_code: str | None = Field(default=None, description="issued by an IVR node while offline")
    incomplete: bool = False
    recording_path: str | None = None
    recording_seconds: float | None = Field(default=None, ge=0)
    received_at: str | None = Field(default=None, description="ISO time of the call, for spooled cases")


class CaseCreated(BaseModel):
    tracking_code: str
    status: str
    due_at: str | None
    created: bool


@router.post("", status_code=201, response_model=CaseCreated)
def create_case(body: CaseIn, db: DbSession, vault: Vault, settings: AppSettings, now: Now) -> Any:
    import datetime as dt

    try:
        profile = get_profile(body.service)
    except UnknownService as exc:
        raise ApiError(422, "unknown_service", str(exc)) from None
    received_at = None
    if body.received_at:
        try:
            received_at = dt.datetime.fromisoformat(body.received_at)
        except ValueError:
            raise ApiError(422, "invalid_received_at", "received_at must be an ISO 8601 time") from None
        if received_at.tzinfo is None:
            raise ApiError(422, "invalid_received_at", "received_at must carry its time zone")
        received_at = min(received_at, now)
    data = NewCase(**body.model_dump(exclude={"received_at"}), received_at=received_at)
    try:
        case, created = register_case(
            db, vault, profile, data, backend_prefix=settings.backend_prefix, now=now
        )
    except IntakeError as exc:
        status = 409 if exc.code == "tracking_code_taken" else 422
        raise ApiError(status, exc.code, str(exc)) from None
    # Committed before answering: the IVR reads this code to the caller as soon as it arrives.
    db.commit()
    return {
        "tracking_code": case.tracking_code,
        "status": case.status,
        "due_at": case.due_at.isoformat() if case.due_at else None,
        "created": created,
    }


def load_case(db, raw_code: str) -> Case:
    try:
        code = parse_tracking_code(raw_code)
    except InvalidTrackingCode as exc:
        raise ApiError(422, "invalid_tracking_code", str(exc)) from None
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    if case is None:
        raise ApiError(404, "case_not_found", "no case has this tracking code")
    return case


def throttle_caller(
    request: Request,
    throttle: Throttle,
    settings: Settings,
    vault: IdentityVault,
    caller_number: str | None,
    what: str,
) -> None:
    """Status look-ups and escalations per calling number and per client address. IVR requests all
    come from the node's address, so callers are told apart by their number; the address budget
    (high) caps the node as a whole and anyone replaying the token."""
    checks = [(settings.rate_limit_per_address, ("case-address", client_address(request)))]
    if caller_number:
        try:
            number = normalise_phone(caller_number)
        except IntakeError:
            number = caller_number.strip()
        # A keyed hash, so a shared store never holds a phone number.
        checks.append((settings.rate_limit_per_caller, ("case-caller", vault.lookup_hash(number)[:32])))
    enforce(throttle, checks, what)


@router.get("/{tracking_code}", response_model=CaseStatusOut)
def read_case(
    tracking_code: str,
    request: Request,
    db: DbSession,
    vault: Vault,
    settings: AppSettings,
    throttle: Throttling,
    caller_number: Annotated[str | None, Query(description="proves ownership: the calling number")] = None,
    national_id: Annotated[str | None, Query(description="proves ownership: the filer's national ID")] = None,
) -> dict[str, Any]:
    throttle_caller(request, throttle, settings, vault, caller_number, "status look-ups")
    case = load_case(db, tracking_code)
    profile = get_profile(case.service)
    owner = is_owner(case, vault, caller_number, national_id)
    return case_status(case, profile.timezone, owner=owner)


class EscalationIn(RequestBody):
    caller_number: str | None = None
    national_id: str | None = None
    call_id: str | None = None


class EscalationOut(BaseModel):
    status: str
    level: int
    already: bool


@router.post("/{tracking_code}/escalations", status_code=201, response_model=EscalationOut)
def escalate(
    tracking_code: str,
    body: EscalationIn,
    request: Request,
    db: DbSession,
    vault: Vault,
    settings: AppSettings,
    throttle: Throttling,
    now: Now,
) -> dict[str, Any]:
    """The citizen's "press 9": the case was not followed up (R8). Only whoever filed the case may
    escalate it: the same proof as hearing the answer (the calling number or the national ID)."""
    throttle_caller(request, throttle, settings, vault, body.caller_number, "escalations")
    case = load_case(db, tracking_code)
    if not is_owner(case, vault, body.caller_number, body.national_id):
        raise ApiError(403, "not_owner", "only whoever filed the case can escalate it")
    try:
        result = escalate_case(db, vault, get_profile(case.service), case, now=now)
    except CitizenActError as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    db.commit()
    return {"status": result.status, "level": result.level, "already": result.already}


class RatingIn(RequestBody):
    rating: int = Field(ge=1, le=5)
    caller_number: str | None = None
    national_id: str | None = None


class RatingOut(BaseModel):
    rating: int


@router.post("/{tracking_code}/satisfaction", status_code=201, response_model=RatingOut)
def satisfaction(tracking_code: str, body: RatingIn, db: DbSession, vault: Vault, now: Now) -> dict[str, Any]:
    """The owner rates the handling of a closed case, 1 to 5 (R21)."""
    case = load_case(db, tracking_code)
    if not is_owner(case, vault, body.caller_number, body.national_id):
        raise ApiError(403, "not_owner", "only whoever filed the case can rate it")
    try:
        rate_case(db, case, body.rating, now=now)
    except CitizenActError as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    db.commit()
    return {"rating": body.rating}
