"""What administrators do: accounts (create, deactivate, roles and units, a new password after a
revocation), the unit tree, and the holidays deadlines skip."""

from __future__ import annotations

import jdatetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from backend.api.deps import DbSession, Now
from backend.commands import _profiles_holidays_file
from backend.console.oversight import parse_jalali_date
from backend.console.web import ConsoleError, ConsoleUser, PostedForm, field, message_fa, redirect, render
from backend.models import Unit, User
from backend.services.profiles import get_profiles
from backend.workflow import staff as accounts
from domain.holidays import (
    holidays_from_file,
    holidays_in_year,
    load_overrides,
    overrides_path,
    save_overrides,
)

router = APIRouter(prefix="/console/admin", include_in_schema=False)

DONE_FA = {
    "created": "کاربر ساخته شد.",
    "role": "نقش و واحد ذخیره شد؛ نشست‌های باز کاربر پایان یافت.",
    "active": "وضعیت حساب ذخیره شد.",
    "password": "گذرواژه تازه صادر شد؛ نشست‌های پیشین پایان یافت.",
    "holiday": "تعطیلی ذخیره شد. زمان‌بند را دوباره راه‌اندازی کنید تا مهلت‌ها با آن حساب شوند.",
}


def require_admin(user: User) -> None:
    if user.role != "admin":
        raise ConsoleError(403, "این صفحه فقط برای مدیر سامانه است.")


def _users_page(
    request: Request, db, *, status: int = 200, error: str | None = None, done: str = ""
) -> Response:
    users = db.scalars(select(User).order_by(User.role, User.username)).all()
    units = db.scalars(select(Unit).order_by(Unit.service, Unit.code)).all()
    return render(
        request,
        "users.html",
        status=status,
        nav="users",
        users=users,
        units=units,
        roles=accounts.ROLES,
        error=error,
        flash=DONE_FA.get(done),
    )


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, user: ConsoleUser, db: DbSession, done: str = "") -> Response:
    require_admin(user)
    return _users_page(request, db, done=done)


def _unit(db, code: str) -> Unit | None:
    return db.scalar(select(Unit).where(Unit.code == code)) if code else None


def _account_act(request: Request, db, act, done: str) -> Response:
    try:
        act()
        db.commit()
    except accounts.AccountError as exc:
        db.rollback()
        return _users_page(request, db, status=422, error=message_fa(exc.code))
    except (PermissionError, ValueError):
        db.rollback()
        return _users_page(request, db, status=422, error=message_fa("weak_password"))
    return redirect(f"/console/admin/users?done={done}")


@router.post("/users", response_class=HTMLResponse)
def create_user(request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now) -> Response:
    require_admin(user)
    return _account_act(
        request,
        db,
        lambda: accounts.create_user(
            db,
            user,
            username=field(form, "username"),
            full_name=field(form, "full_name"),
            role=field(form, "role"),
            unit=_unit(db, field(form, "unit")),
            password=field(form, "password"),
            now=now,
        ),
        "created",
    )


def _target(db, user: User, username: str) -> User:
    """The account an administrator acts on."""
    require_admin(user)
    target = db.scalar(select(User).where(User.username == username))
    if target is None:
        raise ConsoleError(404, "چنین کاربری نیست.")
    return target


@router.post("/users/{username}/role", response_class=HTMLResponse)
def set_role(
    username: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    target = _target(db, user, username)
    unit = _unit(db, field(form, "unit"))
    return _account_act(
        request, db, lambda: accounts.set_role(db, user, target, field(form, "role"), unit, now=now), "role"
    )


@router.post("/users/{username}/active", response_class=HTMLResponse)
def set_active(
    username: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    target = _target(db, user, username)
    active = field(form, "active") == "1"
    return _account_act(request, db, lambda: accounts.set_active(db, user, target, active, now=now), "active")


@router.post("/users/{username}/password", response_class=HTMLResponse)
def new_password(
    username: str, request: Request, user: ConsoleUser, form: PostedForm, db: DbSession, now: Now
) -> Response:
    target = _target(db, user, username)
    password = field(form, "password")
    return _account_act(
        request, db, lambda: accounts.reset_password(db, user, target, password, now=now), "password"
    )


@router.get("/units", response_class=HTMLResponse)
def units(request: Request, user: ConsoleUser, db: DbSession) -> Response:
    require_admin(user)
    roots = db.scalars(select(Unit).where(Unit.parent_id.is_(None)).order_by(Unit.service)).all()
    profiles = get_profiles()
    return render(request, "units.html", nav="units", roots=roots, profiles=profiles)


def _holidays_page(
    request: Request, year: int, *, status: int = 200, error: str | None = None, done: str = ""
):
    spec = _profiles_holidays_file()
    days = holidays_in_year(holidays_from_file(spec), year)
    rows = [(h, jdatetime.date.fromgregorian(date=h.date)) for h in days]
    return render(
        request,
        "holidays.html",
        status=status,
        nav="holidays",
        year=year,
        rows=rows,
        error=error,
        flash=DONE_FA.get(done),
    )


@router.get("/holidays", response_class=HTMLResponse)
def holidays(request: Request, user: ConsoleUser, year: int | None = None, done: str = "") -> Response:
    require_admin(user)
    year = year if year and 1300 <= year <= 1500 else jdatetime.date.today().year
    return _holidays_page(request, year, done=done)


@router.post("/holidays", response_class=HTMLResponse)
def set_holiday(request: Request, user: ConsoleUser, form: PostedForm) -> Response:
    """The same overrides file `didehban holidays set` writes."""
    require_admin(user)
    day = parse_jalali_date(field(form, "date"))
    name = field(form, "name")
    remove = field(form, "action") == "remove"
    year = jdatetime.date.today().year
    if day is None or (not remove and not name):
        return _holidays_page(request, year, status=422, error="تاریخ شمسی و نام تعطیلی را درست بنویسید.")
    target = overrides_path(_profiles_holidays_file())
    if target is None:
        return _holidays_page(
            request, year, status=409, error="فایل تعطیلات فهرست ساده است و باید دستی ویرایش شود."
        )
    overrides = load_overrides(target)
    if remove:
        overrides.revoke(day)
    else:
        overrides.declare(day, name[:200])
    save_overrides(target, overrides)
    from domain.profiles import profiles_in

    profiles_in.cache_clear()  # this process computes deadlines with the new calendar at once
    return redirect(
        f"/console/admin/holidays?year={jdatetime.date.fromgregorian(date=day).year}&done=holiday"
    )
