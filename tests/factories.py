"""Small factories for test data that several test packages need."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.security import hash_password
from backend.models import Unit, User


def add_staff(db: Session, staff: list[tuple[str, str, str | None]], password: str, at: dt.datetime) -> None:
    """One account per (username, role, unit code or None), all with the same password, committed."""
    units = {u.code: u for u in db.scalars(select(Unit))}
    password_hash = hash_password(password)  # argon2 is slow on purpose: once, not per account
    for username, role, unit in staff:
        db.add(
            User(
                username=username,
                full_name=f"کاربر {username}",
                role=role,
                unit=units.get(unit) if unit else None,
                password_hash=password_hash,
                last_inbox_at=at,
                created_at=at,
            )
        )
    db.commit()
