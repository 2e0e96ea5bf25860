"""Keep the unit table in step with the organisation trees in the service profiles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Unit
from domain.profiles import ServiceProfile


def sync_units(session: Session, profiles: dict[str, ServiceProfile]) -> dict[str, Unit]:
    """Create or update every unit named in the profiles; returns units by code. Idempotent."""
    existing = {u.code: u for u in session.scalars(select(Unit))}
    for profile in profiles.values():
        for spec, parent in profile.all_units():
            unit = existing.get(spec.code)
            if unit is None:
                unit = Unit(code=spec.code, service=profile.number, score=100.0)
                session.add(unit)
                existing[spec.code] = unit
            unit.name_fa = spec.name_fa
            unit.level = spec.level
            unit.service = profile.number
            unit.parent = existing[parent.code] if parent else None
    session.flush()
    return existing


def root_unit(session: Session, profile: ServiceProfile) -> Unit:
    unit = session.scalar(select(Unit).where(Unit.code == profile.root_unit.code))
    if unit is None:
        raise LookupError(f"the units of service {profile.number} are not loaded: run `didehban db upgrade`")
    return unit
