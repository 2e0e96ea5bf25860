import pytest

from domain.case_state import (
    OPEN_STATUSES,
    TRANSITIONS,
    CaseAction,
    CaseStatus,
    IllegalTransition,
    allowed_actions,
    next_status,
)

S, A = CaseStatus, CaseAction


def test_the_whole_happy_path():
    status = S.RECEIVED
    for action in [A.SCREEN, A.REFER, A.REFER, A.ANSWER, A.APPROVE, A.APPROVE, A.CLOSE]:
        status = next_status(status, action)
    assert status == S.CLOSED


def test_late_case_returns_then_is_referred_again():
    assert next_status(S.REFERRED, A.RETURN_LATE) == S.RETURNED
    assert next_status(S.RETURNED, A.REFER) == S.REFERRED


def test_answer_sent_back_goes_to_referred():
    assert next_status(S.ANSWERED, A.SEND_BACK) == S.REFERRED
    assert next_status(S.APPROVED, A.SEND_BACK) == S.REFERRED


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES | {S.CLOSED}))
def test_citizen_can_escalate_at_any_stage(status):
    assert next_status(status, A.ESCALATE) == S.ESCALATED


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (S.RECEIVED, A.CLOSE),
        (S.CLOSED, A.REFER),
        (S.RECEIVED, A.ANSWER),
        (S.REJECTED, A.ESCALATE),
        (S.SCREENED, A.RETURN_LATE),
        (S.CLOSED, A.CLOSE),
        (S.RECEIVED, A.APPROVE),
    ],
)
def test_illegal_transitions_are_refused_clearly(status, action):
    with pytest.raises(IllegalTransition, match=f"{status.value} cannot be given the action {action.value}"):
        next_status(status, action)


def test_every_status_is_reachable_from_received():
    seen, frontier = {S.RECEIVED}, [S.RECEIVED]
    while frontier:
        current = frontier.pop()
        for action in allowed_actions(current):
            nxt = TRANSITIONS[(current, action)]
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(CaseStatus)


def test_only_a_deadline_returns_a_case():
    # A referred case, or one the citizen escalated to a unit with its own deadline, and nothing else.
    assert {s for (s, a) in TRANSITIONS if a == A.RETURN_LATE} == {S.REFERRED, S.ESCALATED}
    assert {nxt for (s, a), nxt in TRANSITIONS.items() if a == A.RETURN_LATE} == {S.RETURNED}


def test_unknown_strings_are_rejected():
    with pytest.raises(ValueError):
        next_status("nonsense", "screen")
