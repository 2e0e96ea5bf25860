"""The IVR's contract: file a case, read a case's status."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from backend.api import deps
from backend.api.deps import AppSettings, DbSession, Now, Vault, require_ivr
from backend.api.errors import ApiError, error_responses
from backend.api.schemas import RequestBody, TrackingCodePath, profile_enums
from backend.api.throttling import Throttle, Throttling, client_address, enforce
from backend.core.config import Settings
from backend.core.db import writing
from backend.core.security import IdentityVault
from backend.models import Case
from backend.services.intake import (
    CONFLICTS,
    RECORDING_PATH_MAX,
    BatchItem,
    BatchResult,
    IntakeError,
    NewCase,
    case_by_code,
    normalise_phone,
    refused,
    register_case,
    register_new_cases,
)
from backend.services.profiles import UnknownService, get_profile
from backend.services.status import CaseStatusOut, CaseView, case_status, case_view_by_code, is_owner
from backend.workflow.citizen import CitizenActError, escalate_case, rate_case
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api/v1/cases",
    tags=["cases"],
    dependencies=[Depends(require_ivr)],
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429),
)


# Bounds on every free-text field: a filing is a few short values and at most a long message.
SHORT = 40


class CaseIn(RequestBody):
    model_config = ConfigDict(strict=True, json_schema_extra=profile_enums)
    checked_by_route = frozenset({"recording_path"})  # answers invalid_recording_path

    service: str = Field(max_length=16, examples=["1482"])
    kind: str = Field(max_length=SHORT, examples=["complaint"])
    urgent: bool = False
    national_id: str | None = Field(default=None, max_length=SHORT, examples=["0013542419"])
    caller_number: str | None = Field(default=None, max_length=SHORT, examples=["09121234567"])
    channel: str = Field(default="phone", max_length=SHORT)
    description: str | None = Field(default=None, max_length=20000)
    call_id: str | None = Field(
        default=None, max_length=80, description="idempotency key; empty counts as absent"
    )
    category: str | None = Field(default=None, max_length=SHORT)
    tracking_code: str | None = Field(
        default=None,
        max_length=SHORT,
        json_schema_extra={"pattern": "^[0-9]{10}$"},  # checked by the route: 422 invalid_tracking_code
        description="issued by an IVR node while offline (its node prefix, then 7 digits and a check digit)",
    )
    incomplete: bool = False
    recording_path: str | None = Field(
        default=None,
        max_length=RECORDING_PATH_MAX,
        description="relative to the recordings folder, e.g. 1482/20261123/call-message.wav",
    )
    recording_seconds: float | None = Field(default=None, ge=0, le=24 * 3600)
    received_at: str | None = Field(
        default=None, max_length=64, description="ISO time of the call, for spooled cases"
    )

    @field_validator("call_id")
    @classmethod
    def _blank_call_id_is_absent(cls, value: str | None) -> str | None:
        # "" would be one shared key for every call that has none.
        return value if value and value.strip() else None


class CaseCreated(BaseModel):
    tracking_code: str
    status: str
    due_at: str | None
    created: bool


# A registration that lost a race (same call_id, offline code or national ID filed at the same moment)
# is rolled back and tried again; the next pass sees what the winner stored.
REGISTRATION_ATTEMPTS = 4


def _received_at(raw: str | None, settings: Settings, now: dt.datetime) -> dt.datetime | None:
    """When the call happened, within the accepted window: a spooled case is days old at most."""
    if not raw:
        return None
    try:
        received_at = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, "invalid_received_at", "received_at must be an ISO 8601 time") from None
    if received_at.utcoffset() is None:
        raise ApiError(422, "invalid_received_at", "received_at must carry its time zone")
    earliest = now - dt.timedelta(days=settings.received_at_max_age_days)
    latest = now + dt.timedelta(seconds=settings.received_at_max_skew_seconds)
    # Comparing aware datetimes never overflows, whatever the year or offset.
    if not earliest <= received_at <= latest:
        raise ApiError(
            422,
            "invalid_received_at",
            f"received_at must lie between {earliest.isoformat()} and {latest.isoformat()}",
        )
    return min(received_at, now).astimezone(dt.UTC)


def _file_one(db, vault: IdentityVault, settings: Settings, profile, data: NewCase, now: dt.datetime):
    """One case in its own transaction, tried again after a lost race. Returns (case, created);
    IntakeError for what the filing says, ApiError 409 if the races never settle."""
    for _attempt in range(REGISTRATION_ATTEMPTS):
        try:
            case, created = register_case(
                db,
                vault,
                profile,
                data,
                backend_prefix=settings.backend_prefix,
                offline_prefixes=settings.offline_prefixes(),
                now=now,
                public_url=settings.public_url,
            )
            # Committed before answering: the IVR reads this code to the caller as soon as it arrives.
            db.commit()
            return case, created
        except IntakeError:
            db.rollback()
            raise
        except IntegrityError:
            db.rollback()
            log.info("registration lost a race; trying again")
    raise ApiError(409, "registration_conflict", "the case is being filed concurrently: try again")


def _file_batch(
    db, vault: IdentityVault, settings: Settings, items: list[BatchItem], now: dt.datetime
) -> dict[int, BatchResult]:
    """Each item's result. New cases go in together in one transaction, committed before answering
    (the IVR reads a code to the caller as soon as it arrives); a replay is filed case by case, and so
    is a batch that loses a race twice. On SQLite the whole of it holds the process's writer lock
    (core.db.writing)."""
    with writing(db):
        return _file_batch_now(db, vault, settings, items, now)


# A batch of several that loses a race is written once more as a batch: its look-ups then see what
# the winner stored (a replay is left for the one-by-one path, a taken code refused), so a race on
# one item no longer sends a hundred cases down the path that files each in its own transaction
# (about 3 ms of CPU a case against 0.5: one race in a delivery run cost as much as the rest of it).
BATCH_PASSES = 2


def _file_batch_now(
    db, vault: IdentityVault, settings: Settings, items: list[BatchItem], now: dt.datetime
) -> dict[int, BatchResult]:
    # One case alone is never looked up first (register_new_cases leans on the unique keys), so a
    # second pass would only lose the same way.
    for _pass in range(BATCH_PASSES if len(items) > 1 else 1):
        try:
            results, later = register_new_cases(
                db,
                vault,
                items,
                backend_prefix=settings.backend_prefix,
                offline_prefixes=settings.offline_prefixes(),
                now=now,
                public_url=settings.public_url,
            )
            db.commit()
            break
        except IntegrityError:
            db.rollback()
            log.info("a batch lost a race, or met a stored key")
    else:
        log.info("filing the batch's cases one by one")
        results = {i: refused(item.error) for i, item in enumerate(items) if item.error is not None}
        later = [i for i, item in enumerate(items) if item.error is None]
    for index in later:
        item = items[index]
        try:
            case, created = _file_one(db, vault, settings, item.profile, item.data, now)
        except IntakeError as exc:
            results[index] = refused(exc)
        except ApiError as exc:
            results[index] = BatchResult("conflict", error=IntakeError(exc.code, exc.message))
        else:
            results[index] = BatchResult.of("created" if created else "replay", case)
    return results


def _new_case(body: CaseIn, settings: Settings, now: dt.datetime) -> tuple[Any, NewCase]:
    try:
        profile = get_profile(body.service)
    except UnknownService as exc:
        raise ApiError(422, "unknown_service", str(exc)) from None
    received_at = _received_at(body.received_at, settings, now)
    return profile, NewCase(**body.model_dump(exclude={"received_at"}), received_at=received_at)


def _refusal(error: IntakeError) -> ApiError:
    status = 409 if error.code in (*CONFLICTS, "registration_conflict") else 422
    return ApiError(status, error.code, str(error))


@dataclass
class _Filing:
    """One single-case filing waiting in a FilingGroup."""

    item: BatchItem
    now: dt.datetime
    done: threading.Event = field(default_factory=threading.Event)
    result: BatchResult | None = None
    error: BaseException | None = None
    lead: bool = False  # told to write the next group


class FilingGroup:
    """Group commit for the single-case route: filings that arrive while another group is being
    written wait, and are then written together by one of them, in one transaction through the
    batch's path (each still answered on its own: created, replay, conflict). Alone, a filing is
    written at once; in a burst, one commit (and on SQLite one fsync, on PostgreSQL one round of
    statements) serves many callers instead of each paying its own (issue 13).

    The writer of a group answers its own filing with it and hands the next group to the oldest
    filing waiting, so no request serves others for longer than one group. Replicas each group
    their own filings; between them the unique keys settle races, as before."""

    MAX = 64  # filings a group: a larger one adds more to each caller's wait than it saves

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Filing] = []
        self._writing = False

    def file(
        self, db, vault: IdentityVault, settings: Settings, item: BatchItem, now: dt.datetime
    ) -> BatchResult:
        mine = _Filing(item, now)
        with self._lock:
            self._waiting.append(mine)
            lead = not self._writing
            self._writing = True
        if not lead:
            mine.done.wait()
            if not mine.lead:
                return self._answer(mine)
            mine.lead = False
            mine.done.clear()
        try:
            with self._lock:
                group, self._waiting = self._waiting[: self.MAX], self._waiting[self.MAX :]
            self._write(db, vault, settings, group)
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].done.set()
                else:
                    self._writing = False
        return self._answer(mine)

    @staticmethod
    def _write(db, vault: IdentityVault, settings: Settings, group: list[_Filing]) -> None:
        try:
            # The latest clock of the group: each filing's received_at was checked against its own.
            now = max(filing.now for filing in group)
            results = _file_batch(db, vault, settings, [filing.item for filing in group], now)
            for index, filing in enumerate(group):
                filing.result = results[index]
        except BaseException as exc:  # every filing of the group hears why (the database is down...)
            for filing in group:
                filing.error = exc
        finally:
            for filing in group:
                filing.done.set()

    @staticmethod
    def _answer(filing: _Filing) -> BatchResult:
        if filing.error is not None:
            raise filing.error
        assert filing.result is not None
        return filing.result


def filing_group(request: Request) -> FilingGroup:
    """One group per application (each test's app starts with its own)."""
    group = getattr(request.app.state, "filing_group", None)
    if group is None:
        group = request.app.state.filing_group = FilingGroup()
    return group


@router.post("", status_code=201, response_model=CaseCreated)
async def create_case(
    body: CaseIn, request: Request, db: DbSession, vault: Vault, settings: AppSettings, now: Now
) -> Any:
    # async, with the database's work in one thread-pool hop: a plain `def` route costs two (the
    # route, then FastAPI's check of its answer), each a hand-over between threads (issue 13).
    profile, data = _new_case(body, settings, now)
    # A new case takes the batch's path (a few rows inserted, no ORM unit of work), grouped with the
    # filings that arrive meanwhile; a replay, or a race lost to a concurrent filing, the one-by-one
    # path that settles it.
    item = BatchItem(data=data, profile=profile)
    result = await run_in_threadpool(filing_group(request).file, db, vault, settings, item, now)
    if result.error is not None:
        raise _refusal(result.error)
    return {
        "tracking_code": result.tracking_code,
        "status": result.status,
        "due_at": result.due_at.isoformat() if result.due_at else None,
        "created": result.result == "created",
    }


BATCH_MAX = 200


class CaseBatchIn(RequestBody):
    # Each item is checked for control characters as a CaseIn, and a bad one answered `invalid`
    # alone: refusing the whole batch for one item would hold up the node's other cases.
    checked_by_route = frozenset({"cases"})

    cases: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=BATCH_MAX,
        # Any object is accepted here and checked as a CaseIn one by one: an item that is not a valid
        # case is answered `invalid` on its own; refusing the whole batch would hold up the others.
        description="cases as POST /api/v1/cases takes them (CaseIn), each with its call_id; an item "
        "that is not a valid case is answered `invalid` on its own, the others are still filed",
    )


class ItemError(BaseModel):
    code: str
    message: str


class CaseBatchResult(BaseModel):
    call_id: str | None
    result: str = Field(description="created | replay | conflict | invalid")
    tracking_code: str | None = Field(
        default=None, description="the case's code (a replay may keep an earlier code)"
    )
    status: str | None = None
    due_at: str | None = None
    error: ItemError | None = None


class CaseBatchOut(BaseModel):
    results: list[CaseBatchResult] = Field(description="one per item, in the order sent")


def _batch_item(raw: dict[str, Any], settings: Settings, now: dt.datetime) -> BatchItem:
    try:
        body = CaseIn.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        return BatchItem(error=IntakeError("invalid_request", problems))
    if body.call_id is None:
        return BatchItem(error=IntakeError("invalid_request", "call_id: a batched case needs its call_id"))
    try:
        profile, data = _new_case(body, settings, now)
    except ApiError as exc:
        return BatchItem(error=IntakeError(exc.code, exc.message))
    return BatchItem(data=data, profile=profile)


@router.post(
    ":batch",
    response_model=CaseBatchOut,
    responses=error_responses(400, 401, 403, 413, 422, 429),
)
async def create_cases(
    body: CaseBatchIn, db: DbSession, vault: Vault, settings: AppSettings, now: Now
) -> Any:
    """Many cases at once, for IVR nodes delivering their spools: idempotent per call_id, and each
    item answered on its own (created, replay, conflict, invalid); one bad item never fails the
    batch. New cases are filed together in one transaction; a replay, or a batch that loses a race
    twice, is filed case by case as POST /api/v1/cases files it."""
    items = [_batch_item(raw, settings, now) for raw in body.cases]
    results = await run_in_threadpool(_file_batch, db, vault, settings, items, now)
    out = []
    for index, item in enumerate(items):
        result = results[index]
        call_id = item.data.call_id if item.data is not None else body.cases[index].get("call_id")
        out.append(
            {
                "call_id": call_id if isinstance(call_id, str) else None,
                "result": result.result,
                "tracking_code": result.tracking_code,
                "status": result.status,
                "due_at": result.due_at.isoformat() if result.due_at else None,
                "error": {"code": result.error.code, "message": str(result.error)} if result.error else None,
            }
        )
    return {"results": out}


def load_case(db, raw_code: str) -> Case:
    """The case by its code or by a code an IVR node told the caller (an alias)."""
    case = case_by_code(db, _parsed_code(raw_code))
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


# A look-up only reads, and its one SELECT needs no transaction around it (the second, when ownership
# is proved by national ID, reads the caller's hash, which is written once): in autocommit PostgreSQL
# is spared a BEGIN before it and a COMMIT or ROLLBACK after it, two round trips a look-up (issue 13).
# The pool puts the connection's own isolation level back when it is handed back, so the next
# request that writes finds a transaction as usual (tests/backend/api/test_status_lookup.py).
READ_ONLY = {"isolation_level": "AUTOCOMMIT"}


def _parsed_code(tracking_code: str) -> str:
    try:
        return parse_tracking_code(tracking_code)
    except InvalidTrackingCode as exc:
        raise ApiError(422, "invalid_tracking_code", str(exc)) from None


@contextmanager
def lookup_connection(engine: Engine) -> Iterator[Connection]:
    """A pooled connection for a status look-up, outside any transaction: PostgreSQL in autocommit
    (the pool puts the connection's isolation level back when it is returned); SQLite as it is, since
    its driver begins no transaction for a read and switching to autocommit and back would cost two
    PRAGMAs a look-up."""
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.execution_options(**READ_ONLY)
        yield conn


def load_case_view(conn: Connection, tracking_code: str) -> CaseView:
    """The case a status look-up reads, by its code or an alias: through Core rows, not the ORM."""
    case = case_view_by_code(conn, _parsed_code(tracking_code))
    if case is None:
        raise ApiError(404, "case_not_found", "no case has this tracking code")
    return case


# The look-ups' own threads: a plain executor hands a look-up over through a SimpleQueue (C), where
# the framework's thread pool (anyio) takes a Condition, a capacity limiter and a cancel scope each
# time, about a fifth of a look-up's CPU in the profile (issue 13). A look-up holds a connection for
# well under a millisecond, so a few threads serve thousands a second; beyond them a burst queues
# here, not on the database pool (whose wait times out), and leaves the pool to the other routes.
_LOOKUPS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="status-lookup")


@router.get("/{tracking_code}", response_model=CaseStatusOut)
async def read_case(
    tracking_code: TrackingCodePath,
    request: Request,
    vault: Vault,
    settings: AppSettings,
    throttle: Throttling,
    caller_number: Annotated[str | None, Query(description="proves ownership: the calling number")] = None,
    national_id: Annotated[str | None, Query(description="proves ownership: the filer's national ID")] = None,
) -> dict[str, Any] | JSONResponse:
    # async, with all of a look-up's work in one hop to a look-up thread: the caller's limits (a
    # shared store, redis://, is a network round trip that must never hold the event loop), the code,
    # the read. No session dependency: the look-up reads on a pooled connection of its own, opened and
    # closed in that thread, so neither end costs the request a hop or an exit stack (and a database
    # that does not answer still raises OperationalError out of here: 503).
    return await asyncio.get_running_loop().run_in_executor(
        _LOOKUPS, _read_case, request, throttle, settings, vault, tracking_code, caller_number, national_id
    )


def _read_case(
    request: Request,
    throttle: Throttle,
    settings: Settings,
    vault: IdentityVault,
    tracking_code: str,
    caller_number: str | None,
    national_id: str | None,
) -> dict[str, Any] | JSONResponse:
    try:
        throttle_caller(request, throttle, settings, vault, caller_number, "status look-ups")
        code = _parsed_code(tracking_code)
        # The engine the sessions are made on (deps.get_sessionmaker, so a test can point it elsewhere).
        with lookup_connection(deps.get_sessionmaker().kw["bind"]) as conn:
            case = load_case_view(conn, code)
            # Inside: ownership by national ID reads the caller's hash on this connection (CaseView).
            owner = is_owner(case, vault, caller_number, national_id)
            return case_status(case, get_profile(case.service).timezone, owner=owner)
    except ApiError as exc:
        # Answered, not raised: a raise would travel the exception middleware (issue 13).
        return exc.response()


class EscalationIn(RequestBody):
    caller_number: str | None = Field(default=None, max_length=SHORT)
    national_id: str | None = Field(default=None, max_length=SHORT)
    call_id: str | None = Field(default=None, max_length=80)


class EscalationOut(BaseModel):
    status: str
    level: int
    already: bool


@router.post("/{tracking_code}/escalations", status_code=201, response_model=EscalationOut)
def escalate(
    tracking_code: TrackingCodePath,
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
    caller_number: str | None = Field(default=None, max_length=SHORT)
    national_id: str | None = Field(default=None, max_length=SHORT)


class RatingOut(BaseModel):
    rating: int


@router.post("/{tracking_code}/satisfaction", status_code=201, response_model=RatingOut)
def satisfaction(
    tracking_code: TrackingCodePath, body: RatingIn, db: DbSession, vault: Vault, now: Now
) -> dict[str, Any]:
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
