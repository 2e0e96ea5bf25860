"""The case life cycle as one explicit state machine. Pure: no I/O, no clock.

received -screen-> screened -refer-> referred -answer-> answered -approve-> approved -close-> closed
                                      ^  |                |  ^                |
                                      |  '-refer (down)   |  '-approve (up)   |
                                      '---- send_back ----'-------------------'
referred -return_late-> returned   (deadline missed: back to the central office, R13)
escalated -return_late-> returned  (the unit the citizen escalated to missed its own deadline)
any open state, or closed -escalate-> escalated   (the citizen re-reported, R8)
received/screened/returned/escalated -reject-> rejected   (duplicate, out of scope)
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    RECEIVED = "received"
    SCREENED = "screened"
    REFERRED = "referred"
    ANSWERED = "answered"
    APPROVED = "approved"
    CLOSED = "closed"
    RETURNED = "returned"
    ESCALATED = "escalated"
    REJECTED = "rejected"


class CaseAction(StrEnum):
    SCREEN = "screen"
    REFER = "refer"
    ANSWER = "answer"
    APPROVE = "approve"
    SEND_BACK = "send_back"
    CLOSE = "close"
    RETURN_LATE = "return_late"
    ESCALATE = "escalate"
    REJECT = "reject"
    REOPEN = "reopen"


S, A = CaseStatus, CaseAction

TRANSITIONS: dict[tuple[CaseStatus, CaseAction], CaseStatus] = {
    (S.RECEIVED, A.SCREEN): S.SCREENED,
    (S.RECEIVED, A.REJECT): S.REJECTED,
    (S.RECEIVED, A.ESCALATE): S.ESCALATED,
    (S.SCREENED, A.SCREEN): S.SCREENED,  # re-classified before referral
    (S.SCREENED, A.REFER): S.REFERRED,
    (S.SCREENED, A.ANSWER): S.ANSWERED,  # the operator unit answers it itself
    (S.SCREENED, A.REJECT): S.REJECTED,
    (S.SCREENED, A.ESCALATE): S.ESCALATED,
    (S.REFERRED, A.REFER): S.REFERRED,  # further down the hierarchy
    (S.REFERRED, A.ANSWER): S.ANSWERED,
    (S.REFERRED, A.RETURN_LATE): S.RETURNED,
    (S.REFERRED, A.ESCALATE): S.ESCALATED,
    (S.ANSWERED, A.APPROVE): S.APPROVED,  # approved at one level, goes on up
    (S.ANSWERED, A.SEND_BACK): S.REFERRED,
    (S.ANSWERED, A.CLOSE): S.CLOSED,
    (S.ANSWERED, A.ESCALATE): S.ESCALATED,
    (S.APPROVED, A.APPROVE): S.APPROVED,
    (S.APPROVED, A.SEND_BACK): S.REFERRED,
    (S.APPROVED, A.CLOSE): S.CLOSED,
    (S.APPROVED, A.ESCALATE): S.ESCALATED,
    (S.RETURNED, A.REFER): S.REFERRED,
    (S.RETURNED, A.ANSWER): S.ANSWERED,
    (S.RETURNED, A.REJECT): S.REJECTED,
    (S.RETURNED, A.ESCALATE): S.ESCALATED,
    (S.ESCALATED, A.REFER): S.REFERRED,
    (S.ESCALATED, A.ANSWER): S.ANSWERED,
    (S.ESCALATED, A.ESCALATE): S.ESCALATED,  # re-reported again: one level higher
    (S.ESCALATED, A.RETURN_LATE): S.RETURNED,  # the level it was raised to missed its deadline
    (S.ESCALATED, A.REJECT): S.REJECTED,
    (S.CLOSED, A.ESCALATE): S.ESCALATED,  # "not followed up" after closure, R8: at any stage
    (S.REJECTED, A.REOPEN): S.SCREENED,  # a rejection found wrong on review
}

OPEN_STATUSES = frozenset(set(CaseStatus) - {S.CLOSED, S.REJECTED})

# What a caller hears and reads: the stage of the case in plain Persian.
STAGE_FA: dict[CaseStatus, str] = {
    S.RECEIVED: "ثبت شده و در انتظار بررسی",
    S.SCREENED: "بررسی شده و در انتظار ارجاع",
    S.REFERRED: "ارجاع شده و در دست پیگیری",
    S.ANSWERED: "پاسخ داده شده و در انتظار تأیید",
    S.APPROVED: "پاسخ تأیید شده و در انتظار تأیید نهایی",
    S.CLOSED: "پاسخ نهایی داده شده و بسته شده",
    S.RETURNED: "به دلیل تأخیر به ستاد بازگشته و دوباره پیگیری می‌شود",
    S.ESCALATED: "به سطح بالاتر گزارش شده",
    S.REJECTED: "رد شده",
}


class IllegalTransition(ValueError):
    def __init__(self, status: CaseStatus, action: CaseAction) -> None:
        super().__init__(f"a case that is {status.value} cannot be given the action {action.value}")
        self.status = status
        self.action = action


def next_status(status: CaseStatus | str, action: CaseAction | str) -> CaseStatus:
    status, action = CaseStatus(status), CaseAction(action)
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition(status, action) from None


def allowed_actions(status: CaseStatus | str) -> list[CaseAction]:
    status = CaseStatus(status)
    return [a for (s, a) in TRANSITIONS if s == status]
