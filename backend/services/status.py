"""What a caller may learn of a case by its tracking code (R7), and nothing of who filed it (R9)."""

from __future__ import annotations

from typing import Any

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


def _moment(value, tz: str) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"iso": value.isoformat(), "jalali": jalali_text(value, tz), "parts": jalali_parts(value, tz)}


def case_status(case: Case, tz: str, *, owner: bool) -> dict[str, Any]:
    status = CaseStatus(case.status)
    history = [
        {
            "action": e.action,
            "action_fa": ACTION_FA.get(e.action, e.action),
            "status": e.to_status,
            "unit": e.unit.name_fa if e.unit else None,
            "at": _moment(e.at, tz),
            # Notes are internal (they may name people); the caller hears actions, not notes.
        }
        for e in case.events
        if e.action in ACTION_FA
    ]
    return {
        "tracking_code": case.tracking_code,
        "service": case.service,
        "kind": case.kind,
        "urgent": case.urgent,
        "status": status.value,
        "stage": STAGE_FA[status],
        "unit": case.current_unit.name_fa if case.current_unit else None,
        "unit_code": case.current_unit.code if case.current_unit else None,
        "created": _moment(case.created_at, tz),
        "due": _moment(case.due_at, tz),
        "closed": _moment(case.closed_at, tz),
        "incomplete": case.incomplete,
        "history": history,
        "owner_verified": owner,
        # The answer is read only to whoever filed the case (same number, or the national ID).
        "answer": case.answer if owner else None,
        "has_answer": bool(case.answer),
        "rated": case.satisfaction is not None,
    }
