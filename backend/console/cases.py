"""The inbox, the case page and the acts on a case, through the workflow the staff API calls."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import func, or_, select
from starlette.datastructures import FormData, UploadFile

from backend.api.deps import AppSettings, DbSession, Now, Vault
from backend.api.errors import ApiError
from backend.console.web import (
    ConsoleError,
    ConsoleUser,
    PostedForm,
    field,
    message_fa,
    redirect,
    render,
    time_left,
)
from backend.core.config import get_settings
from backend.models import Attachment, Case, Recording, Unit, User
from backend.services.attachments import AttachmentError, attachment_file, store_attachment
from backend.services.intake import IntakeError, NewCase, recording_path_in_folder, register_case
from backend.services.org import root_unit
from backend.services.profiles import get_profile, get_profiles
from backend.services.staff_access import holds, load_visible, mark_notice_read, may_see, open_inbox
from backend.transcription.drafts import RecordingDraft, drafts_for_case
from backend.transcription.speech_models import model_installed
from backend.workflow import answers, referrals
from domain.case_state import OPEN_STATUSES, CaseAction, CaseStatus, allowed_actions

router = APIRouter(prefix="/console", include_in_schema=False)
# Registered before `router`, so /console/cases/new is not read as a tracking code.
new_case_router = APIRouter(prefix="/console", include_in_schema=False)


def visible_case(db, user: User, code: str) -> Case:
    try:
        return load_visible(db, user, code)
    except ApiError as exc:
        raise ConsoleError(404 if exc.status == 422 else exc.status, message_fa(exc.code)) from None


# --- the inbox --------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def inbox(request: Request, user: ConsoleUser, db: DbSession, now: Now) -> Response:
    held, notices = open_inbox(db, user, now)
    db.commit()  # opening the inbox is what keeps a manager's password (R14)
    queue = None
    if user.role == "operator" and user.unit is not None:
        # The screening queue: new cases of the operator's service, urgent first, then the oldest.
        new = db.scalars(
            select(Case).where(Case.service == user.unit.service, Case.status == CaseStatus.RECEIVED.value)
        ).all()
        queue = [
            (c, time_left(c.due_at, now)) for c in sorted(new, key=lambda c: (not c.urgent, c.created_at))
        ]
        held = [c for c in held if c.status != CaseStatus.RECEIVED.value]
    overview = None
    if user.role in ("supervisor", "admin"):
        open_values = [s.value for s in OPEN_STATUSES]
        count = lambda *where: db.scalar(select(func.count(Case.id)).where(*where)) or 0  # noqa: E731
        overview = [
            ("پرونده باز", count(Case.status.in_(open_values)), "/console/escalations"),
            ("پرونده تازه در انتظار غربال", count(Case.status == "received"), "/console/escalations"),
            (
                "پیگیری شهروند (باز)",
                count(Case.escalation_level > 0, Case.status.in_(open_values)),
                "/console/escalations",
            ),
            ("بازگشتی به دلیل تأخیر (باز)", count(Case.status == "returned"), "/console/returned"),
        ]
    return render(
        request,
        "inbox.html",
        nav="inbox",
        queue=queue,
        held=[(c, time_left(c.due_at, now)) for c in held],
        notices=notices,
        unread=sum(1 for n in notices if n.read_at is None),
        overview=overview,
    )


@router.post("/notices/{notice_id}/read", response_class=HTMLResponse)
def read_notice(
    notice_id: int, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    notice = mark_notice_read(db, user, notice_id, now)
    if notice is None:
        raise ConsoleError(404, "چنین اعلانی در کارتابل شما نیست.")
    db.commit()
    if request.headers.get("hx-request"):
        return render(request, "_notice.html", n=notice)
    return redirect("/console/")


@router.get("/find")
def find(code: str, user: ConsoleUser, db: DbSession) -> Response:
    case = visible_case(db, user, code)
    return redirect(f"/console/cases/{case.tracking_code}")


# --- the case page ----------------------------------------------------------------------------


def _descendants(unit: Unit, depth: int = 0) -> list[tuple[Unit, int]]:
    out: list[tuple[Unit, int]] = []
    for child in sorted(unit.children, key=lambda u: u.code):
        out.append((child, depth))
        out += _descendants(child, depth + 1)
    return out


def _earlier_cases(db, user: User, case: Case) -> list[tuple[Case, bool]]:
    """The same caller's other cases, matched by the keyed hashes of the identity (never shown)."""
    match = []
    if case.caller_id is not None:
        match.append(Case.caller_id == case.caller_id)
    if case.phone_hash is not None:
        match.append(Case.phone_hash == case.phone_hash)
    if not match:
        return []
    others = db.scalars(
        select(Case)
        .where(or_(*match), Case.id != case.id, Case.created_at <= case.created_at)
        .order_by(Case.id)
    ).all()
    return [(other, may_see(db, user, other)) for other in others]


def case_page(
    request: Request,
    db,
    user: User,
    case: Case,
    now,
    *,
    status: int = 200,
    error: str | None = None,
    flash: str | None = None,
) -> Response:
    may_act = holds(user, case)
    allowed = set(allowed_actions(case.status))
    profile = get_profile(case.service)
    top = root_unit(db, profile)
    screening = user.role in ("operator", "admin")
    can = {
        "screen": may_act and screening and CaseAction.SCREEN in allowed,
        "refer": may_act and CaseAction.REFER in allowed and case.current_unit is not None,
        "answer": may_act and CaseAction.ANSWER in allowed,
        "approve": may_act and (CaseAction.APPROVE in allowed or CaseAction.CLOSE in allowed),
        "reject": may_act and screening and CaseAction.REJECT in allowed,
    }
    targets = _descendants(case.current_unit) if case.current_unit is not None else []
    drafts = drafts_for_case(db, case)
    return render(
        request,
        "case.html",
        status=status,
        error=error,
        flash=flash,
        case=case,
        left=time_left(case.due_at, now),
        may_act=may_act,
        is_open=CaseStatus(case.status) in OPEN_STATUSES,
        can=can,
        targets=targets,
        at_top=case.current_unit_id == top.id,
        earlier=_earlier_cases(db, user, case),
        drafts={d.recording_id: d for d in drafts},
        speech_model=speech_model_installed(),
        draft_text=_message_draft(drafts),
    )


def speech_model_installed() -> bool:
    settings = get_settings()
    return model_installed(settings.speech_language, settings)


def _message_draft(drafts: list[RecordingDraft]) -> str:
    """What the transcript box starts from while no final transcript is saved: the message's draft."""
    return "\n".join(d.text for d in drafts if d.kind == "message" and d.status == "done" and d.text)


DONE_FA = {
    "screen": "غربال ثبت شد.",
    "refer": "پرونده ارجاع شد.",
    "answer": "پاسخ ثبت شد و برای تأیید به بالا رفت.",
    "approve": "تأیید شد.",
    "send-back": "پاسخ برای اصلاح بازگردانده شد.",
    "reject": "پرونده رد شد و به تماس‌گیرنده پیامک می‌شود.",
    "transcript": "متن پیام ذخیره شد.",
    "attachments": "پیوست‌ها بارگذاری شد.",
    "new": "پرونده ثبت شد.",
}


@router.get("/cases/{code}", response_class=HTMLResponse)
def read_case(
    code: str, request: Request, user: ConsoleUser, db: DbSession, now: Now, done: str = ""
) -> Response:
    case = visible_case(db, user, code)
    return case_page(request, db, user, case, now, flash=DONE_FA.get(done))


# What every workflow act is told about who acts and when: the staff API passes the same three.
Acting = dict[str, Any]


def _act(
    request: Request, db, user: User, code: str, now, name: str, act: Callable[[Case, Acting], Any]
) -> Response:
    """Run one act as the holder; a refusal shows the case page again with the reason."""
    case = visible_case(db, user, code)
    if not holds(user, case):
        return case_page(request, db, user, case, now, status=403, error=message_fa("not_holder"))
    try:
        act(case, {"actor": user.username, "now": now, "user": user})
        db.commit()
    except (referrals.WorkflowError, AttachmentError) as exc:
        db.rollback()
        case = visible_case(db, user, code)
        return case_page(request, db, user, case, now, status=409, error=message_fa(exc.code))
    return redirect(f"/console/cases/{case.tracking_code}?done={name}")


def _operators_only(user: User, why: str) -> None:
    if user.role not in ("operator", "admin"):
        raise ConsoleError(403, why)


def _files(form: FormData) -> list[UploadFile]:
    return [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]


def _store_files(db, settings, case: Case, files: list[UploadFile], user: User, now) -> None:
    for upload in files:
        content = upload.file.read()
        store_attachment(
            db,
            settings.data_dir,
            case,
            upload.filename or "",
            content,
            user=user,
            actor=user.username,
            now=now,
        )


@router.post("/cases/{code}/transcript")
def save_transcript(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    text = field(form, "transcript")
    return _act(
        request,
        db,
        user,
        code,
        now,
        "transcript",
        lambda case, by: referrals.record_transcript(db, case, text, **by),
    )


@router.post("/cases/{code}/screen")
def screen(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    _operators_only(user, "غربال کار اپراتورهاست.")

    def act(case: Case, by: Acting) -> None:
        referrals.screen(
            db,
            case,
            category=field(form, "category"),
            urgent=bool(field(form, "urgent")),
            kind=field(form, "kind") or None,
            profile=get_profile(case.service),
            **by,
        )

    return _act(request, db, user, code, now, "screen", act)


@router.post("/cases/{code}/refer")
def refer(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, vault: Vault, now: Now
) -> Response:
    target = db.scalar(select(Unit).where(Unit.code == field(form, "unit")))

    def act(case: Case, by: Acting) -> None:
        if target is None:
            raise referrals.WorkflowError("not_below", "no such unit")
        profile = get_profile(case.service)
        referrals.refer(db, vault, profile, case, target, note=field(form, "note") or None, **by)

    return _act(request, db, user, code, now, "refer", act)


@router.post("/cases/{code}/answer")
def answer(
    code: str,
    request: Request,
    user: ConsoleUser,
    form: PostedForm,
    db: DbSession,
    vault: Vault,
    settings: AppSettings,
    now: Now,
) -> Response:
    def act(case: Case, by: Acting) -> None:
        _store_files(db, settings, case, _files(form), user, now)
        answers.answer(db, vault, get_profile(case.service), case, field(form, "text"), **by)

    return _act(request, db, user, code, now, "answer", act)


@router.post("/cases/{code}/approve")
def approve(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, vault: Vault, now: Now
) -> Response:
    def act(case: Case, by: Acting) -> None:
        answers.approve(db, vault, get_profile(case.service), case, note=field(form, "note") or None, **by)

    return _act(request, db, user, code, now, "approve", act)


@router.post("/cases/{code}/send-back")
def send_back(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, vault: Vault, now: Now
) -> Response:
    def act(case: Case, by: Acting) -> None:
        answers.send_back(db, vault, get_profile(case.service), case, field(form, "note"), **by)

    return _act(request, db, user, code, now, "send-back", act)


@router.post("/cases/{code}/reject")
def reject(
    code: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, vault: Vault, now: Now
) -> Response:
    _operators_only(user, "رد پرونده کار اپراتورهاست.")

    def act(case: Case, by: Acting) -> None:
        profile = get_profile(case.service)
        referrals.reject(db, vault, profile, case, field(form, "why"), field(form, "reason"), **by)

    return _act(request, db, user, code, now, "reject", act)


@router.post("/cases/{code}/attachments")
def attach(
    code: str,
    request: Request,
    user: ConsoleUser,
    form: PostedForm,
    db: DbSession,
    settings: AppSettings,
    now: Now,
) -> Response:
    def act(case: Case, by: Acting) -> None:
        files = _files(form)
        if not files:
            raise AttachmentError("empty_file", "no file")
        _store_files(db, settings, case, files, user, now)

    return _act(request, db, user, code, now, "attachments", act)


# --- registering a case from another channel (R18) ---------------------------------------------


def _new_case_services(user: User) -> dict[str, Any]:
    profiles = get_profiles()
    if user.role == "operator" and user.unit is not None:
        return {user.unit.service: profiles[user.unit.service]}
    return dict(profiles)


def _chosen(services: dict[str, Any], wanted: str | None) -> str:
    # Kinds, categories and channels differ per service: the form shows one service's lists at a time.
    return wanted if wanted in services else next(iter(services))


@new_case_router.get("/cases/new", response_class=HTMLResponse)
def new_case_form(request: Request, user: ConsoleUser, service: str | None = None) -> Response:
    _operators_only(user, "ثبت پرونده از مجراهای دیگر کار اپراتورهاست.")
    services = _new_case_services(user)
    return render(
        request, "new_case.html", nav="new", services=services, chosen=_chosen(services, service), values={}
    )


@new_case_router.post("/cases/new", response_class=HTMLResponse)
def new_case(
    request: Request,
    user: ConsoleUser,
    form: PostedForm,
    db: DbSession,
    vault: Vault,
    settings: AppSettings,
    now: Now,
) -> Response:
    _operators_only(user, "ثبت پرونده از مجراهای دیگر کار اپراتورهاست.")
    services = _new_case_services(user)
    service = field(form, "service")
    values = {k: field(form, k) for k in ("service", "kind", "category", "channel", "description")}
    values["urgent"] = bool(field(form, "urgent"))

    def again(code: str) -> Response:
        db.rollback()
        return render(
            request,
            "new_case.html",
            status=422,
            nav="new",
            services=services,
            chosen=_chosen(services, service),
            values=values,
            error=message_fa(code),
        )

    if service not in services:
        return again("invalid_channel")
    channel = field(form, "channel")
    if channel == "phone":  # calls are filed by the IVR
        return again("invalid_channel")
    try:
        case, _ = register_case(
            db,
            vault,
            services[service],
            NewCase(
                service=service,
                kind=field(form, "kind"),
                urgent=values["urgent"],
                channel=channel,
                national_id=field(form, "national_id") or None,
                caller_number=field(form, "caller_number") or None,
                description=field(form, "description") or None,
                category=field(form, "category") or None,
                actor=user.username,
            ),
            backend_prefix=settings.backend_prefix,
            now=now,
            public_url=settings.public_url,
        )
        _store_files(db, settings, case, _files(form), user, now)
        db.commit()
    except (IntakeError, AttachmentError) as exc:
        return again(exc.code)
    return redirect(f"/console/cases/{case.tracking_code}?done=new")


# --- recordings and attachments, only to those who may see the case ----------------------------


def _inside(root: Path, relative: str) -> Path | None:
    try:
        clean = recording_path_in_folder(relative)
    except IntakeError:
        return None
    base = root.resolve()
    path = (base / clean).resolve()
    return path if path.is_relative_to(base) and path.is_file() else None


def audio_response(root: Path, relative: str | None, download: bool) -> Response:
    """A recording, answering HTTP Range with 206 (Starlette's FileResponse) so the player can seek."""
    path = _inside(root, relative) if relative else None
    if path is None:
        raise ConsoleError(404, "فایل صدا پیدا نشد.")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(
        path,
        media_type=media,
        filename=path.name if download else None,
        content_disposition_type="attachment" if download else "inline",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get("/recordings/{recording_id}")
def recording(
    recording_id: int, user: ConsoleUser, db: DbSession, settings: AppSettings, download: bool = False
) -> Response:
    row = db.get(Recording, recording_id) if 0 < recording_id < 2**31 else None
    allowed = False
    if row is not None and row.case_id is not None:
        allowed = may_see(db, user, row.case)
    elif row is not None:
        allowed = user.role in ("supervisor", "admin")  # a call with no case: the call logs' readers
    if row is None or not allowed:
        raise ConsoleError(404, "فایل صدا پیدا نشد.")
    return audio_response(settings.recordings_dir, row.path, download)


@router.get("/attachments/{attachment_id}")
def attachment(attachment_id: int, user: ConsoleUser, db: DbSession, settings: AppSettings) -> Response:
    row = db.get(Attachment, attachment_id) if 0 < attachment_id < 2**31 else None
    path = (
        attachment_file(settings.data_dir, row) if row is not None and may_see(db, user, row.case) else None
    )
    if row is None or path is None:
        raise ConsoleError(404, "پیوست پیدا نشد.")
    return FileResponse(
        path,
        media_type=row.content_type,
        filename=row.filename,
        # Images, PDF and audio open in the browser; nothing else was accepted.
        content_disposition_type="inline",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
