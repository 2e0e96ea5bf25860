"""What a caller may learn of a case by its tracking code (R7), and nothing of who filed it (R9)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from backend.core.security import IdentityVault
from backend.models import Case
from backend.services.intake import IntakeError, normalise_phone
from domain.case_state import STAGE_FA, CaseStatus
from domain.jalali import jalali_parts, jalali_text
from domain.national_id import InvalidNationalId, parse_national_id

ACTION_FA = {
    "register": "ثبت",
    "screen": "بررسی و دسته‌بندی",
    "refer": "ارجاع",
    "answer": "پاسخ",
    "approve": "تأیید پاسخ",
    "send_back": "بازگرداندن پاسخ برای تکمیل",
    "close": "پاسخ نهایی و بستن",
    "return_late": "بازگشت به ستاد به دلیل تأخیر",
    "escalate": "گزارش به سطح بالاتر",
    "reject": "رد",
    "reopen": "بازگشایی",
    "rate": "ثبت رضایت",
}


def is_owner(case: Case, vault: IdentityVault, caller_number: str | None, national_id: str | None) -> bool:
    # The number the case was filed from, not the caller's latest: another number never becomes owner.
    if caller_number and case.phone_hash:
        try:
            if vault.lookup_hash(normalise_phone(caller_number)) == case.phone_hash:
                return True
        except IntakeError:
            pass
    caller = case.caller
    if caller is None:
        return False
    if national_id and caller.national_id_hash:
        try:
            return vault.lookup_hash(parse_national_id(national_id)) == caller.national_id_hash
        except InvalidNationalId:
            return False
    return False


class MomentOut(BaseModel):
    iso: str
    jalali: str
    parts: dict[str, int]


class HistoryOut(BaseModel):
    at: MomentOut | None
    status: str | None
    # For the case's owner only: what was done and by which unit.
    action: str | None = None
    action_fa: str | None = None
    unit: str | None = None


class CaseStatusOut(BaseModel):
    """What the IVR reads. Fields marked "owner" are null for anyone who has not proved they filed it."""

    tracking_code: str
    status: str
    stage: str
    created: MomentOut | None
    due: MomentOut | None
    closed: MomentOut | None
    history: list[HistoryOut]
    owner_verified: bool
    has_answer: bool
    service: str | None = Field(description="owner")
    kind: str | None = Field(description="owner")
    urgent: bool | None = Field(description="owner")
    unit: str | None = Field(description="owner")
    unit_code: str | None = Field(description="owner")
    incomplete: bool | None = Field(description="owner")
    answer: str | None = Field(description="owner")
    rated: bool | None = Field(description="owner")


def _moment(value, tz: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"iso": value.isoformat(), "jalali": jalali_text(value, tz), "parts": jalali_parts(value, tz)}


def case_status(case: Case, tz: str, *, owner: bool) -> dict[str, Any]:
    """A stranger holding a code hears the stage and the dates only: not what the case is about
    (kind, urgency), not who holds it, not the answer. The owner hears everything but the notes."""
    status = CaseStatus(case.status)
    history = []
    for e in case.events:
        if e.action not in ACTION_FA:
            continue
        entry: dict[str, Any] = {"at": _moment(e.at, tz), "status": e.to_status}
        if owner:
            # Notes are internal (they may name people); the caller hears actions, not notes.
            entry |= {
                "action": e.action,
                "action_fa": ACTION_FA[e.action],
                "unit": e.unit.name_fa if e.unit else None,
            }
        history.append(entry)
    unit = case.current_unit
    return {
        "tracking_code": case.tracking_code,
        "status": status.value,
        "stage": STAGE_FA[status],
        "created": _moment(case.created_at, tz),
        "due": _moment(case.due_at, tz),
        "closed": _moment(case.closed_at, tz),
        "history": history,
        "owner_verified": owner,
        # Whether there is an answer decides if the IVR asks for the national ID to read it.
        "has_answer": bool(case.answer),
        "service": case.service if owner else None,
        "kind": case.kind if owner else None,
        "urgent": case.urgent if owner else None,
        "unit": unit.name_fa if owner and unit else None,
        "unit_code": unit.code if owner and unit else None,
        "incomplete": case.incomplete if owner else None,
        # The answer is read only to whoever filed the case (same number, or the national ID).
        "answer": case.answer if owner else None,
        "rated": (case.satisfaction is not None) if owner else None,
    }
