"""What every console page shares: the cookie session (the API's own session token in an HttpOnly
cookie), the CSRF check on every form, the templates and their Persian filters, and the errors a
page shows instead of JSON."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from backend.api.deps import AppSettings, DbSession, Now, session_for_token, user_of_session
from backend.api.errors import ApiError
from backend.api.schemas import WITHOUT_CONTROL
from backend.core.config import get_settings
from backend.models import StaffSession, User
from backend.services.profiles import get_profiles
from backend.workflow.staff import ROLES_FA
from domain.case_state import STAGE_FA, CaseStatus
from domain.digits import to_persian_digits
from domain.jalali import jalali_text

HERE = Path(__file__).parent
SESSION_COOKIE = "didehban_console"
LOGIN_CSRF_COOKIE = "didehban_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

templates = Jinja2Templates(directory=HERE / "templates")


# --- errors a page shows ----------------------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class ConsoleError(Exception):
    """A page's refusal, shown as a Persian page with the right status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


API_ERRORS_FA = {
    "case_not_found": "پرونده‌ای با این کد رهگیری در دسترس شما نیست.",
    "invalid_tracking_code": "کد رهگیری درست نیست.",
    "not_holder": "فقط واحدی که پرونده را در دست دارد می‌تواند روی آن اقدام کند.",
    "bad_credentials": "نام کاربری یا گذرواژه درست نیست.",
    "password_revoked": "گذرواژه شما لغو شده است (۴۸ ساعت کارتابل باز نشده). "
    "از مدیر سامانه گذرواژه تازه بخواهید.",
    "too_many_requests": "تلاش‌های ناموفق زیاد بود. کمی بعد دوباره تلاش کنید.",
    "session_ended": "نشست شما پایان یافته است. دوباره وارد شوید.",
    "unauthorized": "برای دیدن این صفحه وارد شوید.",
}

WORKFLOW_ERRORS_FA = {
    "illegal_transition": "این اقدام در مرحله کنونی پرونده ممکن نیست.",
    "invalid_category": "دسته انتخاب‌شده درست نیست.",
    "invalid_kind": "نوع انتخاب‌شده درست نیست.",
    "wrong_service": "پرونده فقط به واحدهای همان سامانه ارجاع می‌شود.",
    "not_below": "هر واحد فقط به واحدهای زیرمجموعه خود ارجاع می‌دهد.",
    "empty_answer": "متن پاسخ خالی است.",
    "nothing_to_send_back": "هیچ واحدی به این پرونده پاسخ نداده است.",
    "invalid_reason": "دلیل رد درست نیست.",
    "reason_required": "دلیل رد را بنویسید.",
    "transcript_too_long": "متن پیام بیش از اندازه بلند است.",
    "empty_file": "فایل خالی است.",
    "file_too_large": "حجم فایل بیش از ۱۰ مگابایت است.",
    "unsupported_type": "فقط تصویر (JPEG، PNG، WebP)، PDF و صوت پذیرفته می‌شود.",
    "invalid_national_id": "کد ملی درست نیست.",
    "invalid_caller_number": "شماره تلفن درست نیست.",
    "invalid_channel": "مجرای دریافت درست نیست.",
    "cannot_escalate": "این پرونده را نمی‌توان به سطح بالاتر فرستاد.",
    "invalid_username": "نام کاربری فقط حروف لاتین، رقم و نشانه، بدون فاصله.",
    "username_taken": "این نام کاربری گرفته شده است.",
    "invalid_role": "نقش درست نیست.",
    "unit_required": "اپراتور، مدیر و کارشناس باید واحد داشته باشند.",
    "weak_password": "گذرواژه دست‌کم ۱۰ نویسه است.",
    "self_deactivation": "نمی‌توانید حساب خودتان را غیرفعال کنید.",
}


def message_fa(code: str, fallback: str = "درخواست انجام نشد.") -> str:
    return WORKFLOW_ERRORS_FA.get(code) or API_ERRORS_FA.get(code) or fallback


# --- the session cookie -----------------------------------------------------------------------


def set_session_cookie(
    response, request: Request, token: str, expires_at: dt.datetime, now: dt.datetime
) -> None:
    # The cookie lives as long as the session; the server checks the session on every request anyway.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, int((expires_at - now).total_seconds())),
        path="/console",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )


def clear_session_cookie(response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")


def console_session(request: Request, db: DbSession, settings: AppSettings, now: Now) -> StaffSession:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequired()
    try:
        return session_for_token(db, settings, now, token)
    except ApiError as exc:
        raise LoginRequired(exc.code) from None


def console_user(
    request: Request, db: DbSession, staff_session: Annotated[StaffSession, Depends(console_session)]
) -> User:
    try:
        user = user_of_session(db, staff_session)
    except ApiError as exc:
        raise LoginRequired(exc.code) from None
    # A detached copy for the page header: error pages render after the database session closed.
    request.state.viewer = SimpleNamespace(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        unit=SimpleNamespace(name_fa=user.unit.name_fa, code=user.unit.code) if user.unit else None,
    )
    request.state.csrf = csrf_token(request, staff_session)
    return user


ConsoleUser = Annotated[User, Depends(console_user)]
ConsoleSession = Annotated[StaffSession, Depends(console_session)]


# --- CSRF: a token bound to the session (and, before login, a double-submit cookie) -------------


def csrf_token(request: Request, staff_session: StaffSession) -> str:
    key = get_settings().session_key.encode()
    return hmac.new(key, f"csrf:{staff_session.session_id}".encode(), hashlib.sha256).hexdigest()


def _submitted_csrf(request: Request, form: FormData) -> str:
    value = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    return value if isinstance(value, str) else ""


async def checked_form(request: Request, staff_session: ConsoleSession, _user: ConsoleUser) -> FormData:
    """The posted form, once its CSRF token is the session's; 403 otherwise."""
    form = await request.form(max_files=10, max_fields=100)
    if not hmac.compare_digest(_submitted_csrf(request, form), csrf_token(request, staff_session)):
        raise ConsoleError(403, "فرم منقضی شده یا از جای دیگری فرستاده شده است. صفحه را دوباره باز کنید.")
    return form


PostedForm = Annotated[FormData, Depends(checked_form)]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_ok(request: Request, form: FormData) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(_submitted_csrf(request, form), cookie)


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.translate(WITHOUT_CONTROL).strip() if isinstance(value, str) else default


# --- rendering --------------------------------------------------------------------------------


def fa(value: Any) -> str:
    return to_persian_digits("" if value is None else str(value))


def jdate(moment: dt.datetime | None) -> str:
    return fa(jalali_text(moment)) if moment else "—"


def time_left(due: dt.datetime | None, now: dt.datetime) -> dict[str, str]:
    """The time left as text and a colour class: ok, soon (under a quarter day), late."""
    if due is None:
        return {"text": "بدون مهلت", "level": "none"}
    seconds = int((due - now).total_seconds())
    late = seconds < 0
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} روز")
    if hours:
        parts.append(f"{hours} ساعت")
    if not days and minutes:
        parts.append(f"{minutes} دقیقه")
    text = " و ".join(parts) or "کمتر از یک دقیقه"
    if late:
        return {"text": fa(f"{text} گذشته"), "level": "late"}
    level = "soon" if seconds < 6 * 3600 else "ok"
    return {"text": fa(f"{text} مانده"), "level": level}


def seconds_fa(value: float | None) -> str:
    if value is None:
        return "—"
    total = round(value)
    return fa(f"{total // 60}:{total % 60:02d}")


ACTIONS_FA = {
    "register": "ثبت",
    "screen": "غربال",
    "refer": "ارجاع",
    "answer": "پاسخ",
    "approve": "تأیید",
    "send_back": "بازگرداندن برای اصلاح",
    "close": "بستن",
    "return_late": "بازگشت به دلیل تأخیر",
    "escalate": "گزارش به سطح بالاتر",
    "reject": "رد",
    "reopen": "بازگشایی",
    "transcript": "متن پیام",
    "attach": "پیوست",
    "rate": "رضایت",
}

OUTCOMES_FA = {
    "filed": "ثبت پرونده",
    "status": "پیگیری وضعیت",
    "abandoned": "قطع تماس",
    "operator": "اتصال به اپراتور",
    "escalated": "گزارش پیگیری‌نشده",
}


def labels(service: str | None) -> dict[str, dict[str, str]]:
    profile = get_profiles().get(service or "")
    if profile is None:
        return {"kinds": {}, "categories": {}, "channels": {}}
    return {"kinds": profile.kinds, "categories": profile.categories, "channels": profile.channels}


templates.env.filters["fa"] = fa
templates.env.filters["jdate"] = jdate
templates.env.filters["seconds_fa"] = seconds_fa
templates.env.globals.update(
    STAGE_FA={s.value: text for s, text in STAGE_FA.items()},
    ACTIONS_FA=ACTIONS_FA,
    ROLES_FA=ROLES_FA,
    OUTCOMES_FA=OUTCOMES_FA,
    labels=labels,
    CaseStatus=CaseStatus,
)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("user", getattr(request.state, "viewer", None))
    context.setdefault("csrf", getattr(request.state, "csrf", ""))
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/console/login?next={quote(target)}")
