import pytest
from sqlalchemy import select

from backend.models import CaseEvent
from backend.models.case import HistoryIsAppendOnly


def test_case_events_cannot_be_edited_or_deleted(client, ivr_headers, db):
    from tests.backend.api.test_cases import new_case

    client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    event = db.scalar(select(CaseEvent))
    event.note = "rewritten"
    with pytest.raises(HistoryIsAppendOnly):
        db.flush()
    db.rollback()
    db.delete(db.scalar(select(CaseEvent)))
    with pytest.raises(HistoryIsAppendOnly):
        db.flush()
    db.rollback()
