"""Citizens' SMS replies, forwarded by the gateway: a 1-5 reply rates a recently closed case (R21)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from backend.api.deps import AppSettings, Credentials, DbSession, Now, Vault, bearer_token, gateway_bearer
from backend.api.errors import ApiError, error_responses
from backend.api.schemas import RequestBody
from backend.core.security import tokens_match
from backend.models import Case
from backend.services.intake import IntakeError, case_by_code, normalise_phone
from backend.workflow.citizen import rate_case
from domain.digits import normalise_digits
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

router = APIRouter(prefix="/api/v1/sms", tags=["sms"], responses=error_responses(400, 401, 413, 422, 429))
RATING_WINDOW = dt.timedelta(days=30)


class InboundSms(RequestBody):
    sender: str = Field(alias="from", max_length=40)
    text: str = Field(max_length=1600)  # ten concatenated SMS parts at most


class InboundReply(BaseModel):
    recorded: bool
    reason: str | None = None
    tracking_code: str | None = None
    rating: int | None = None


@router.post("/inbound", response_model=InboundReply, response_model_exclude_none=True)
def inbound(
    body: InboundSms,
    db: DbSession,
    vault: Vault,
    settings: AppSettings,
    now: Now,
    credentials: Annotated[Credentials, Depends(gateway_bearer)],
) -> dict[str, Any]:
    """A reply of 1-5 rates this number's latest closed case; "<tracking code> <1-5>" rates that case
    (its own code or one an IVR node told the caller), if it was filed from this number."""
    if not tokens_match(bearer_token(credentials), settings.sms_inbound_secret):
        raise ApiError(401, "unauthorized", "the gateway's secret is not valid")
    words = [normalise_digits(word) for word in body.text.split()]
    if not words or words[-1] not in {"1", "2", "3", "4", "5"}:
        return {"recorded": False, "reason": "not a rating"}  # anything else is not ours to act on
    reply = words[-1]
    try:
        phone_hash = vault.lookup_hash(normalise_phone(body.sender))
    except IntakeError:
        return {"recorded": False, "reason": "unknown sender"}
    awaiting = select(Case).where(
        # The number the case was filed from: a later caller's number never rates someone else's case.
        Case.phone_hash == phone_hash,
        Case.status == "closed",
        Case.satisfaction.is_(None),
        Case.closed_at >= now - RATING_WINDOW,
    )
    if len(words) > 1:
        try:
            named = case_by_code(db, parse_tracking_code("".join(words[:-1])))
        except InvalidTrackingCode:
            return {"recorded": False, "reason": "not a rating"}
        awaiting = awaiting.where(Case.id == (named.id if named else None))
    case = db.scalar(awaiting.order_by(Case.closed_at.desc()).limit(1))
    if case is None:
        return {"recorded": False, "reason": "no closed case awaits a rating from this number"}
    rate_case(db, case, int(reply), now=now, actor="sms")
    db.commit()
    return {"recorded": True, "tracking_code": case.tracking_code, "rating": int(reply)}
