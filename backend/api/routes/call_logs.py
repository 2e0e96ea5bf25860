"""The IVR nodes' call logs (R19): `POST /api/v1/call-logs`, idempotent by Asterisk's unique id.

A node never touches the database: its AMI listener posts each finished call here (and again from
the CDR after a reconnect); the backend encrypts the caller's number and links the recordings and
the case."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, field_validator

from backend.api.deps import DbSession, Vault, require_ivr
from backend.api.errors import ApiError, error_body, error_responses
from backend.api.schemas import RequestBody
from backend.services.call_logs import CallReport, save_call_log

router = APIRouter(
    prefix="/api/v1/call-logs",
    tags=["call logs"],
    dependencies=[Depends(require_ivr)],
    responses=error_responses(400, 401, 409, 413, 422, 429),
)

# A path relative to the recordings folder: no leading /, no "..", nothing but plain name characters.
RELATIVE_PATH = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"


class CallLogIn(RequestBody):
    unique_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._-]+$")
    service: str | None = Field(default=None, max_length=16, pattern=r"^[0-9]+$", examples=["1482"])
    caller_number: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]*$")
    started_at: dt.datetime | None = Field(default=None, strict=False)  # ISO 8601 text in JSON
    answered_at: dt.datetime | None = Field(default=None, strict=False)  # ISO 8601 text in JSON
    ended_at: dt.datetime | None = Field(default=None, strict=False)  # ISO 8601 text in JSON
    duration_seconds: float | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    outcome: str | None = Field(default=None, max_length=40)
    tracking_code: str | None = Field(default=None, pattern=r"^[0-9]{10}$")
    path: str | None = Field(default=None, max_length=2000)
    message_recording: str | None = Field(default=None, max_length=300, pattern=RELATIVE_PATH)
    call_recording: str | None = Field(default=None, max_length=300, pattern=RELATIVE_PATH)
    hangup_cause: str | None = Field(default=None, max_length=40)

    @field_validator("started_at", "answered_at", "ended_at")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("a time must carry its time zone")
        if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime(2200, 1, 1, tzinfo=dt.UTC):
            raise ValueError("a time outside any call this system could have taken")
        return value.astimezone(dt.UTC)

    @field_validator("message_recording", "call_recording")
    @classmethod
    def _inside_recordings(cls, value: str | None) -> str | None:
        if value is not None and ".." in value.split("/"):
            raise ValueError("a recording path stays inside the recordings folder")
        return value


class CallLogSaved(BaseModel):
    unique_id: str
    created: bool = Field(description="false when this call was already logged and the report merged")
    case_linked: bool = Field(description="the call's recording is linked to the case it names")


def _error(description: str, code: str, message: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"example": error_body(code, message)}},
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "this call was logged already: the report was merged", "model": CallLogSaved},
    401: _error("no or a wrong IVR token", "unauthorized", "the IVR token is not valid"),
    409: _error("the same call reported many times at once", "call_log_busy", "try again"),
    422: _error("a field out of range", "invalid_request", "tracking_code: ..."),
}


@router.post("", status_code=201, response_model=CallLogSaved, responses=ERRORS)
def report_call(body: CallLogIn, db: DbSession, vault: Vault, response: Response) -> Any:
    report = CallReport(**body.model_dump())
    try:
        saved = save_call_log(db, vault, report)
    except RuntimeError as exc:
        raise ApiError(409, "call_log_busy", str(exc)) from None
    db.commit()
    if not saved.created:
        response.status_code = 200
    return {"unique_id": saved.log.unique_id, "created": saved.created, "case_linked": saved.case_linked}
