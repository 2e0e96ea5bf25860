"""Demo data: staff for both services and a few cases, so a new user sees a working system."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from backend.core.config import get_settings
from backend.core.db import session_scope
from backend.core.migrate import upgrade_and_sync
from backend.core.security import IdentityVault, hash_password
from backend.models import Case, Unit, User
from backend.services.intake import NewCase, register_case
from backend.services.profiles import get_profiles
from domain.national_id import with_check_digit

# username, full name, role, unit code
DEMO_USERS = [
    ("admin", "مدیر سامانه", "admin", None),
    ("supervisor", "ناظر تماس‌ها", "supervisor", None),
    ("operator1482", "اپراتور دیده‌بان", "operator", "1482-hq"),
    ("khorasan", "مدیر بهزیستی خراسان رضوی", "manager", "1482-khr"),
    ("mashhad", "مدیر بهزیستی شهرستان مشهد", "manager", "1482-khr-mashhad"),
    ("neyshabur", "مدیر بهزیستی شهرستان نیشابور", "manager", "1482-khr-neyshabur"),
    ("omid", "مسئول مرکز توانبخشی امید", "manager", "1482-khr-mashhad-c01"),
    ("operator111", "اپراتور سامد خوزستان", "operator", "111-khz"),
    ("abfa", "رابط سامد آب و فاضلاب خوزستان", "manager", "111-khz-abfa"),
    ("ahvaz", "رابط سامد شهرداری اهواز", "manager", "111-khz-ahvaz-municipality"),
]

DEMO_CASES = [
    ("1482", "complaint", True, "123456789", "09151234567", "demo-1", "رفتار نامناسب با کودکان در مرکز"),
    ("1482", "violation", False, "234567891", "09152345678", "demo-2", "نگهداری بیش از ظرفیت در مرکز اقامتی"),
    ("1482", "suggestion", False, "345678912", "09153456789", "demo-3", "پیشنهاد افزایش ساعات مهدکودک"),
    ("111", "complaint", False, "456789123", "09161234567", "demo-4", "قطعی مکرر آب در کوی ملت اهواز"),
    ("111", "request", False, "567891234", "09162345678", "demo-5", "درخواست آسفالت کوچه"),
]


def load_demo() -> None:
    settings = get_settings()
    upgrade_and_sync(settings.database_url)
    vault = IdentityVault.from_settings(settings)
    profiles = get_profiles()
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        units = {u.code: u for u in session.scalars(select(Unit))}
        for username, name, role, unit_code in DEMO_USERS:
            if session.scalar(select(User).where(User.username == username)) is None:
                session.add(
                    User(
                        username=username,
                        full_name=name,
                        role=role,
                        unit=units.get(unit_code) if unit_code else None,
                        password_hash=hash_password(settings.demo_password),
                        last_inbox_at=now,
                    )
                )
        for service, kind, urgent, nid9, phone, call_id, text in DEMO_CASES:
            if session.scalar(select(Case.id).where(Case.call_id == call_id)) is None:
                register_case(
                    session,
                    vault,
                    profiles[service],
                    NewCase(
                        service=service,
                        kind=kind,
                        urgent=urgent,
                        channel="phone",
                        national_id=with_check_digit(nid9),
                        caller_number=phone,
                        call_id=call_id,
                        description=text,
                    ),
                    backend_prefix=settings.backend_prefix,
                    now=now,
                )
        codes = [c for c in session.scalars(select(Case.tracking_code).where(Case.call_id.like("demo-%")))]
    print("demo data loaded")
    print(f"  staff users: {', '.join(u[0] for u in DEMO_USERS)} (password: {settings.demo_password})")
    print(f"  demo tracking codes: {', '.join(codes)}")
