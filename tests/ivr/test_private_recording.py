"""The whole-call recording is muted while a national ID is typed or read back, and while an answer
meant for the case's owner is read (issue 9, fault 6). The real mute is tested through the PBX
(tests/pbx/test_phone_hardening.py); here, which commands run inside the muted stretch."""

from __future__ import annotations

import pytest

from ivr.ami.mute import MuteFailed
from tests.ivr.test_calls import NEW_CASE, NID
from tests.ivr.test_status_calls import ANSWER, file_case


@pytest.fixture
def mutes(monkeypatch):
    """Every mute and unmute, with the number of AGI commands sent before it."""
    from ivr.flows.call import Call

    seen: list[tuple[bool, int]] = []

    async def fake(self, mute: bool) -> bool:
        seen.append((mute, len(self.path)))
        return True

    monkeypatch.setattr(Call, "_mute_recording", fake)
    return seen


async def test_the_national_id_is_typed_and_read_back_while_muted(backend, place_call, db, mutes):
    t = await place_call(NEW_CASE)
    assert [m for m, _ in mutes] == [True, False]
    # Muted after the urgency menu, unmuted once the ID was confirmed, before the recording.
    (_, muted_at), (_, unmuted_at) = mutes
    path = t.variables["DIDEHBAN_PATH"].split(">")
    assert path[muted_at - 1] == "urgent:2" and path[muted_at:unmuted_at] == ["nid-confirm:1", "nid"]


async def test_the_owners_answer_and_the_proof_are_muted(backend, place_call, db, vault, mutes):
    code = file_case(db, vault, answer=ANSWER)
    t = await place_call(["2", f"{code}#", f"{NID}#", "1", ""], caller="09350000000")
    assert "answer-is" in t.played
    assert [m for m, _ in mutes] == [True, False, True, False]  # the proof, then the answer


async def test_without_a_mute_the_recording_stops(backend, place_call, db, monkeypatch):
    from ivr.flows.call import Call

    async def unreachable(self, mute: bool) -> bool:
        raise MuteFailed("AMI unreachable")

    monkeypatch.setattr(Call, "_mute_recording", unreachable)
    t = await place_call(NEW_CASE)
    stop = t.commands.index('EXEC StopMixMonitor ""')
    assert stop < next(i for i, c in enumerate(t.commands) if "enter-national-id" in c)
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"
