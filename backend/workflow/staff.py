"""Keeping units answerable (R14, R15, R22): warnings, escalation notices, revoking the passwords of
managers who stop opening their inbox, and the morning digest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from backend.core.security import hash_password
from backend.models import AccountEvent, Case, Notice, StaffSession, Unit, User
from domain.case_state import OPEN_STATUSES
from domain.digits import to_persian_digits
from domain.profiles import ServiceProfile

INACTIVITY_LIMIT = dt.timedelta(hours=48)
DIGEST_HOUR = 7  # local time: unit heads read it when the working day starts


def managers_of(session: Session, unit: Unit | None) -> list[User]:
    if unit is None:
        return []
    return list(
        session.scalars(
            select(User).where(User.unit_id == unit.id, User.role == "manager", User.is_active.is_(True))
        )
    )


def notify(
    session: Session,
    users: Iterable[User],
    kind: str,
    text: str,
    key: str,
    *,
    now: dt.datetime,
    case: Case | None = None,
) -> int:
    made = 0
    for user in users:
        dedupe = f"{key}:{user.id}"
        if session.scalar(select(Notice.id).where(Notice.dedupe_key == dedupe)) is None:
            session.add(
                Notice(
                    user_id=user.id,
                    kind=kind,
                    text=text,
                    dedupe_key=dedupe,
                    created_at=now,
                    case_id=case.id if case else None,
                )
            )
            made += 1
    return made


def _inactive_managers(now: dt.datetime, limit: dt.timedelta):
    cutoff = now - limit
    return select(User).where(
        User.role == "manager",
        User.password_revoked_at.is_(None),
        User.password_hash.is_not(None),
        or_(User.last_inbox_at < cutoff, User.last_inbox_at.is_(None) & (User.created_at < cutoff)),
    )


def inactive_manager_ids(
    session: Session, now: dt.datetime, *, limit: dt.timedelta = INACTIVITY_LIMIT
) -> list[int]:
    return list(session.scalars(_inactive_managers(now, limit).with_only_columns(User.id)).all())


def revoke_if_inactive(
    session: Session, user_id: int, now: dt.datetime, *, limit: dt.timedelta = INACTIVITY_LIMIT
) -> bool:
    """Revoke one manager's password if they are still inactive (they may have just logged in)."""
    user = session.scalar(_inactive_managers(now, limit).where(User.id == user_id))
    if user is None:
        return False
    user.password_revoked_at = now
    session.add(
        AccountEvent(
            user_id=user.id,
            action="password_revoked",
            actor="scheduler",
            at=now,
            note="کارتابل ۴۸ ساعت باز نشده است",
        )
    )
    end_sessions(session, user, now=now, reason="password_revoked")
    return True


def revoke_inactive(session: Session, now: dt.datetime, *, limit: dt.timedelta = INACTIVITY_LIMIT) -> int:
    """Managers who have not opened the inbox for 48 hours lose their password (R14)."""
    return sum(
        revoke_if_inactive(session, user_id, now, limit=limit)
        for user_id in inactive_manager_ids(session, now, limit=limit)
    )


def end_sessions(
    session: Session, user: User, *, now: dt.datetime, reason: str, only: str | None = None
) -> int:
    """End the user's open sessions (or just the one named `only`); their tokens stop working."""
    stmt = update(StaffSession).where(StaffSession.user_id == user.id, StaffSession.ended_at.is_(None))
    if only is not None:
        stmt = stmt.where(StaffSession.session_id == only)
    result = session.execute(
        stmt.values(ended_at=now, end_reason=reason).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def reset_password(session: Session, admin: User, user: User, new_password: str, *, now: dt.datetime) -> None:
    """Only an administrator issues a new password (R14)."""
    if admin.role != "admin":
        raise PermissionError("only an administrator issues a new password")
    if len(new_password) < 10:
        raise ValueError("a password has at least 10 characters")
    user.password_hash = hash_password(new_password)
    user.password_revoked_at = None
    user.last_inbox_at = now  # the 48 hours start again
    # Whoever held the old password (or a token issued with it) is out at once.
    end_sessions(session, user, now=now, reason="password_reset")
    session.add(AccountEvent(user_id=user.id, action="password_reset", actor=admin.username, at=now))


def morning_digest(session: Session, profiles: dict[str, ServiceProfile], now: dt.datetime) -> int:
    """Each unit head's summary of what waits and what is about to be late (R22), once a day."""
    made = 0
    soon = now + dt.timedelta(hours=24)
    for unit in session.scalars(select(Unit)):
        profile = profiles.get(unit.service)
        if profile is None:
            continue
        local = now.astimezone(ZoneInfo(profile.timezone))
        if local.hour < DIGEST_HOUR:
            continue
        key = f"digest:{unit.id}:{local.date()}"
        managers = managers_of(session, unit)
        told = set(
            session.scalars(
                select(Notice.dedupe_key).where(Notice.dedupe_key.in_([f"{key}:{u.id}" for u in managers]))
            )
        )
        if len(told) == len(managers):
            # Every head of the unit has today's digest (or there is none): nothing to count. The
            # scheduler ticks all day; the counts below read every open case of the unit.
            continue
        held = select(func.count(Case.id)).where(
            Case.current_unit_id == unit.id, Case.status.in_([s.value for s in OPEN_STATUSES])
        )
        waiting = session.scalar(held) or 0
        if not waiting:
            continue
        due_soon = session.scalar(held.where(Case.due_at.is_not(None), Case.due_at <= soon)) or 0
        text = to_persian_digits(
            f"کارتابل {unit.name_fa}: {waiting} پرونده در انتظار رسیدگی؛ "
            f"{due_soon} پرونده تا 24 ساعت آینده به پایان مهلت می‌رسد."
        )
        made += notify(session, managers, "digest", text, key, now=now)
    return made


ROLES = ("operator", "manager", "staff", "supervisor", "admin")
ROLES_FA = {
    "operator": "اپراتور غربال",
    "manager": "مدیر واحد",
    "staff": "کارشناس واحد",
    "supervisor": "ناظر",
    "admin": "مدیر سامانه",
}
# Roles that work a unit's inbox need a unit; supervisors and administrators see every unit.
ROLES_WITH_UNIT = ("operator", "manager", "staff")


class AccountError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _require_admin(admin: User) -> None:
    if admin.role != "admin":
        raise PermissionError("only an administrator manages accounts")


def _check_role(role: str, unit: Unit | None) -> None:
    if role not in ROLES:
        raise AccountError("invalid_role", f"a role is one of {', '.join(ROLES)}")
    if role in ROLES_WITH_UNIT and unit is None:
        raise AccountError("unit_required", "operators, managers and unit staff belong to a unit")


def create_user(
    session: Session,
    admin: User,
    *,
    username: str,
    full_name: str,
    role: str,
    unit: Unit | None,
    password: str,
    now: dt.datetime,
) -> User:
    _require_admin(admin)
    username = username.strip()
    if not username or len(username) > 64 or not username.isascii() or " " in username:
        raise AccountError("invalid_username", "a username is 1-64 Latin letters, digits or signs, no spaces")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError("username_taken", "this username is taken")
    _check_role(role, unit)
    if len(password) < 10:
        raise AccountError("weak_password", "a password has at least 10 characters")
    user = User(
        username=username,
        full_name=full_name.strip() or username,
        role=role,
        unit=unit if role in ROLES_WITH_UNIT else None,
        password_hash=hash_password(password),
        last_inbox_at=now,  # the 48 hours start now
        created_at=now,
    )
    session.add(user)
    session.flush()
    session.add(AccountEvent(user_id=user.id, action="created", actor=admin.username, at=now, note=role))
    return user


def set_role(
    session: Session, admin: User, user: User, role: str, unit: Unit | None, *, now: dt.datetime
) -> None:
    _require_admin(admin)
    _check_role(role, unit)
    user.role, user.unit = role, unit if role in ROLES_WITH_UNIT else None
    # What the old sessions could reach is no longer what this account may reach.
    end_sessions(session, user, now=now, reason="role_changed")
    session.add(
        AccountEvent(
            user_id=user.id,
            action="role_changed",
            actor=admin.username,
            at=now,
            note=f"{role} {unit.code if unit else ''}",
        )
    )


def set_active(session: Session, admin: User, user: User, active: bool, *, now: dt.datetime) -> None:
    _require_admin(admin)
    if user.id == admin.id and not active:
        raise AccountError("self_deactivation", "an administrator cannot deactivate their own account")
    user.is_active = active
    if not active:
        end_sessions(session, user, now=now, reason="deactivated")
    session.add(
        AccountEvent(
            user_id=user.id, action="activated" if active else "deactivated", actor=admin.username, at=now
        )
    )
