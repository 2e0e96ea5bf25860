"""The citizens' pages: file a case from a mobile number proved by an SMS code (R18), follow it by its
tracking code (R7), add evidence through the one-time link of the registration SMS (R5, R17).

No login and no script: plain forms, a double-submit CSRF cookie, a honeypot field, rate limits per
client address and per mobile number. National IDs and numbers travel only in POST bodies, never in
a URL, a log line or a file name, and a page shows them only to whoever just typed them."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import FormData, UploadFile

from backend.api.deps import AppSettings, DbSession, Now, Vault
from backend.api.throttling import Throttle, Throttling, client_address
from backend.citizen.codes import CodeError, check_code, mobile_number, open_challenge, send_code, spend
from backend.console.web import field, jdate, message_fa
from backend.core.security import IdentityVault
from backend.models import Case
from backend.services.attachments import (
    ACCEPTED,
    ATTACHMENT_MAX_BYTES,
    AttachmentError,
    sniff,
    store_attachment,
)
from backend.services.evidence import spend_token, usable_token
from backend.services.intake import IntakeError, NewCase, case_by_code, register_case
from backend.services.profiles import get_profiles
from backend.services.status import case_status, is_owner
from domain.digits import to_persian_digits
from domain.national_id import InvalidNationalId, parse_national_id
from domain.privacy import mask_phone
from domain.profiles import ServiceProfile
from domain.tracking_code import InvalidTrackingCode, parse_tracking_code

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSRF_COOKIE = "didehban_web_csrf"
CSRF_FIELD = "csrf"
HONEYPOT = "website"  # hidden from people; a bot that fills every field fills it
MAX_FILES = 5
DESCRIPTION_MAX = 4000
REGISTRATION_ATTEMPTS = 3

# No script runs on these pages; styles and fonts come from this server only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; font-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # The evidence link's token must not leave in a Referer header.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

ERRORS_FA = {
    "bad_mobile": "شماره همراه درست نیست. آن را مانند ۰۹۱۲۱۲۳۴۵۶۷ بنویسید.",
    "wrong_code": "کد تأیید درست نیست.",
    "code_expired": "این کد تأیید منقضی شده یا به کار رفته است. کد تازه بگیرید.",
    "too_many_attempts": "تلاش‌های نادرست زیاد بود. کد تازه بگیرید.",
    "invalid_service": "سامانه را انتخاب کنید.",
    "empty_description": "شرح درخواست یا شکایت را بنویسید.",
    "description_too_long": f"شرح حداکثر {to_persian_digits(str(DESCRIPTION_MAX))} نویسه است.",
    "too_many_files": f"حداکثر {to_persian_digits(str(MAX_FILES))} فایل بفرستید.",
    "no_files": "فایلی انتخاب نشده است.",
    "invalid_tracking_code": "کد رهگیری درست نیست.",
    "case_not_found": "پرونده‌ای با این کد رهگیری پیدا نشد.",
    "no_mobile": "برای این پرونده شماره همراهی ثبت نشده است. با کد ملی پیگیری کنید.",
    "not_owner": "کد ملی با این پرونده نمی‌خواند؛ پاسخ فقط به ثبت‌کننده نشان داده می‌شود.",
    "link_dead": "این پیوند به کار رفته یا منقضی شده است.",
    "refused": "درخواست پذیرفته نشد.",
    "form_expired": "فرم منقضی شده است. صفحه را دوباره باز کنید.",
    "too_many_requests": "درخواست‌های شما زیاد بود. کمی بعد دوباره تلاش کنید.",
    "busy": "سامانه مشغول است. چند لحظه بعد دوباره تلاش کنید.",
}


def error_fa(code: str) -> str:
    return ERRORS_FA.get(code) or message_fa(code)


class WebRefusal(Exception):
    """A refusal shown as a Persian page."""

    def __init__(self, status: int, code: str, *, retry_after: int | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.retry_after = status, code, retry_after


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["fa"] = lambda value: to_persian_digits("" if value is None else str(value))
templates.env.filters["jdate"] = jdate

router = APIRouter(include_in_schema=False)


# --- pages, CSRF and the honeypot -------------------------------------------------------------


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    token = request.cookies.get(CSRF_COOKIE) or ""
    if not (16 <= len(token) <= 64 and token.isascii()):
        token = secrets.token_urlsafe(24)
    context.setdefault("error", None)
    response = templates.TemplateResponse(request, template, {"csrf": token, **context}, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path="/",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
        max_age=6 * 3600,
    )
    return response


async def posted(request: Request, *, max_files: int = 0) -> FormData:
    """The form once its CSRF token matches the cookie and its honeypot is empty."""
    form = await request.form(max_files=max_files, max_fields=30)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(sent, cookie):
        raise WebRefusal(403, "form_expired")
    if field(form, HONEYPOT):
        log.info("web form refused: honeypot filled")
        raise WebRefusal(400, "refused")
    return form


def limited(throttle: Throttle, checks: list[tuple[str, tuple[str, ...]]], *, count: bool = True) -> None:
    """429 (as a page) when any limit is exhausted; else the request is counted (if `count`)."""
    waits = [w for notation, key in checks if (w := throttle.wait_seconds(notation, *key)) is not None]
    if waits:
        raise WebRefusal(429, "too_many_requests", retry_after=max(waits))
    if count:
        for notation, key in checks:
            throttle.count(notation, *key)


def web_services() -> dict[str, ServiceProfile]:
    return {number: p for number, p in get_profiles().items() if "web" in p.channels}


# --- filing a case ----------------------------------------------------------------------------


def _start_page(request: Request, status: int = 200, error: str | None = None, values=None) -> Response:
    return page(
        request, "file_start.html", status=status, services=web_services(), values=values or {}, error=error
    )


@router.get("/", response_class=HTMLResponse)
def start(request: Request) -> Response:
    return _start_page(request)


@router.post("/file/code", response_class=HTMLResponse)
async def ask_code(
    request: Request, db: DbSession, vault: Vault, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form = await posted(request)
    service = field(form, "service")
    values = {"service": service}
    if service not in web_services():
        return _start_page(request, 422, error_fa("invalid_service"), values)
    try:
        phone = mobile_number(field(form, "mobile"))
    except CodeError as exc:
        return _start_page(request, 422, error_fa(exc.code), values)
    limited(
        throttle,
        [
            (settings.web_codes_per_address, ("web-code-address", client_address(request))),
            # The number's keyed hash, never the number, names its counter (a shared store keeps keys).
            (settings.web_codes_per_number, ("web-code-number", vault.lookup_hash(phone))),
        ],
    )
    sent = send_code(db, vault, settings, phone, purpose="file", now=now)
    db.commit()
    return _filing_page(request, web_services()[service], sent.handle, mask_phone(phone), {})


def _filing_page(
    request: Request,
    profile: ServiceProfile,
    handle: str,
    masked: str,
    values: dict[str, str],
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page(
        request,
        "file_form.html",
        status=status,
        profile=profile,
        handle=handle,
        masked=masked,
        values=values,
        error=error,
        max_files=MAX_FILES,
    )


async def evidence_files(form: FormData) -> list[tuple[str, bytes]]:
    """The chosen files as (display name, content), each checked by its content and size first, so
    nothing is stored unless all are good. Display names tell nothing of who sent them."""
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if len(uploads) > MAX_FILES:
        raise AttachmentError("too_many_files", "too many files")
    files = []
    for number, upload in enumerate(uploads, start=1):
        content = await upload.read(ATTACHMENT_MAX_BYTES + 1)
        if not content:
            raise AttachmentError("empty_file", "the file is empty")
        if len(content) > ATTACHMENT_MAX_BYTES:
            raise AttachmentError("file_too_large", "the file is too large")
        kind = sniff(content[:16])
        if kind is None:
            raise AttachmentError("unsupported_type", "type not accepted")
        files.append((f"مدرک شهروند {to_persian_digits(str(number))}.{ACCEPTED[kind]}", content))
    return files


def _store(db, settings, case: Case, files: list[tuple[str, bytes]], now: dt.datetime) -> None:
    for name, content in files:
        store_attachment(db, settings.data_dir, case, name, content, user=None, actor="citizen", now=now)


@router.post("/file", response_class=HTMLResponse)
async def file_case(
    request: Request, db: DbSession, vault: Vault, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form = await posted(request, max_files=MAX_FILES)
    services = web_services()
    service, handle = field(form, "service"), field(form, "handle")
    values = {k: field(form, k) for k in ("kind", "category", "description", "national_id")}
    profile = services.get(service)
    challenge = open_challenge(db, handle, "file")
    if profile is None or challenge is None:
        raise WebRefusal(422, "code_expired")
    masked = mask_phone(vault.decrypt(challenge.phone_enc))

    def again(code: str, status: int = 422) -> Response:
        return _filing_page(request, profile, handle, masked, values, status=status, error=error_fa(code))

    address_limit = [(settings.web_filings_per_address, ("web-file-address", client_address(request)))]
    limited(throttle, address_limit, count=False)
    if values["kind"] not in profile.kinds:
        return again("invalid_kind")
    if values["category"] and values["category"] not in profile.categories:
        return again("invalid_category")
    if not values["description"]:
        return again("empty_description")
    if len(values["description"]) > DESCRIPTION_MAX:
        return again("description_too_long")
    try:
        national_id = parse_national_id(values["national_id"])
    except InvalidNationalId:
        return again("invalid_national_id")
    try:
        files = await evidence_files(form)
    except AttachmentError as exc:
        return again(exc.code)
    try:
        check_code(db, vault, settings, challenge, handle, field(form, "code"), now=now)
    except CodeError as exc:
        db.commit()  # the wrong try counts
        return again(exc.code)
    phone = vault.decrypt(challenge.phone_enc)
    for _attempt in range(REGISTRATION_ATTEMPTS):
        try:
            if not spend(db, challenge, now=now):
                db.rollback()
                return again("code_expired")
            case, _ = register_case(
                db,
                vault,
                profile,
                NewCase(
                    service=service,
                    kind=values["kind"],
                    urgent=False,
                    channel="web",
                    national_id=national_id,
                    caller_number=phone,
                    description=values["description"],
                    category=values["category"] or None,
                    actor="citizen",
                ),
                backend_prefix=settings.backend_prefix,
                now=now,
                public_url=settings.public_url,
            )
            _store(db, settings, case, files, now)
            db.commit()
            break
        except (IntakeError, AttachmentError) as exc:
            db.rollback()
            return again(exc.code)
        except IntegrityError:  # a concurrent first filing with the same national ID: try again
            db.rollback()
    else:
        raise WebRefusal(503, "busy")
    limited(throttle, address_limit)
    return page(request, "filed.html", status=201, code=case.tracking_code, profile=profile)


# --- following a case -------------------------------------------------------------------------


def _status_page(request: Request, status: int = 200, error: str | None = None, code: str = "") -> Response:
    return page(request, "status.html", status=status, error=error, code=code)


def _case_view(request: Request, case: Case, settings, *, owner: bool, note: str | None = None) -> Response:
    profile = get_profiles().get(case.service)
    tz = profile.timezone if profile else settings.timezone
    return page(
        request,
        "status_view.html",
        s=case_status(case, tz, owner=owner),
        profile=profile,
        owner=owner,
        note=note,
    )


@router.get("/status", response_class=HTMLResponse)
def status_form(request: Request) -> Response:
    return _status_page(request)


def _case_of(db, raw: str) -> Case:
    try:
        code = parse_tracking_code(raw)
    except InvalidTrackingCode:
        raise WebRefusal(422, "invalid_tracking_code") from None
    case = case_by_code(db, code)
    if case is None:
        raise WebRefusal(404, "case_not_found")
    return case


@router.post("/status", response_class=HTMLResponse)
async def status_lookup(
    request: Request, db: DbSession, vault: Vault, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form = await posted(request)
    limited(throttle, [(settings.web_status_per_address, ("web-status-address", client_address(request)))])
    raw = field(form, "tracking_code")
    try:
        case = _case_of(db, raw)
    except WebRefusal as exc:
        return _status_page(request, exc.status, error_fa(exc.code), raw)
    if field(form, "via") == "sms":
        return _send_status_code(request, db, vault, settings, now, throttle, case)
    national_id = field(form, "national_id")
    owner = bool(national_id) and is_owner(case, vault, None, national_id)
    note = error_fa("not_owner") if national_id and not owner else None
    return _case_view(request, case, settings, owner=owner, note=note)


def _send_status_code(
    request: Request,
    db,
    vault: IdentityVault,
    settings,
    now: dt.datetime,
    throttle: Throttle,
    case: Case,
) -> Response:
    if not case.phone_enc:
        return _status_page(request, 422, error_fa("no_mobile"), case.tracking_code)
    phone = vault.decrypt(case.phone_enc)
    limited(
        throttle,
        [
            (settings.web_codes_per_address, ("web-code-address", client_address(request))),
            (settings.web_codes_per_number, ("web-code-number", vault.lookup_hash(phone))),
        ],
    )
    sent = send_code(db, vault, settings, phone, purpose="status", case=case, now=now)
    db.commit()
    return page(request, "status_code.html", handle=sent.handle, masked=mask_phone(phone))


@router.post("/status/code", response_class=HTMLResponse)
async def status_by_code(
    request: Request, db: DbSession, vault: Vault, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form = await posted(request)
    limited(throttle, [(settings.web_status_per_address, ("web-status-address", client_address(request)))])
    handle = field(form, "handle")
    challenge = open_challenge(db, handle, "status")
    try:
        check_code(db, vault, settings, challenge, handle, field(form, "code"), now=now)
    except CodeError as exc:
        db.commit()
        if exc.code == "wrong_code" and challenge is not None:
            masked = mask_phone(vault.decrypt(challenge.phone_enc))
            return page(
                request,
                "status_code.html",
                status=422,
                handle=handle,
                masked=masked,
                error=error_fa(exc.code),
            )
        return _status_page(request, 422, error_fa(exc.code))
    spend(db, challenge, now=now)
    db.commit()
    case = db.get(Case, challenge.case_id)
    if case is None:
        raise WebRefusal(404, "case_not_found")
    return _case_view(request, case, settings, owner=True)


# --- evidence later (R5, R17) -----------------------------------------------------------------


@router.get("/e/{token}", response_class=HTMLResponse)
def evidence_form(token: str, request: Request, db: DbSession, now: Now) -> Response:
    row = usable_token(db, token, now=now)
    if row is None:
        raise WebRefusal(404, "link_dead")
    return page(request, "evidence.html", code=row.case.tracking_code, max_files=MAX_FILES)


@router.post("/e/{token}", response_class=HTMLResponse)
async def evidence_upload(
    token: str, request: Request, db: DbSession, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form = await posted(request, max_files=MAX_FILES)
    limited(throttle, [(settings.web_uploads_per_address, ("web-upload-address", client_address(request)))])
    row = usable_token(db, token, now=now)
    if row is None:
        raise WebRefusal(404, "link_dead")
    code = row.case.tracking_code

    def again(error: str) -> Response:
        return page(
            request, "evidence.html", status=422, code=code, max_files=MAX_FILES, error=error_fa(error)
        )

    try:
        files = await evidence_files(form)
    except AttachmentError as exc:
        return again(exc.code)
    if not files:
        return again("no_files")
    if not spend_token(db, row, now=now):
        db.rollback()
        raise WebRefusal(404, "link_dead")
    try:
        _store(db, settings, row.case, files, now)
        db.commit()
    except AttachmentError as exc:
        db.rollback()
        return again(exc.code)
    return page(request, "evidence_done.html", code=code, count=len(files))


# --- mounting ---------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/web/static", StaticFiles(directory=HERE / "static"), name="citizen-static")

    @app.exception_handler(WebRefusal)
    async def _refused(request: Request, exc: WebRefusal) -> Response:
        response = page(request, "error.html", status=exc.status, message=error_fa(exc.code))
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
