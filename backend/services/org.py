"""Keep the unit table in step with the organisation trees in the service profiles."""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine, select
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


# Root unit ids by engine: units are only ever updated in place (sync_units), never renumbered, so an
# id read once holds for the engine's life; a new engine (another database) starts afresh.
_root_ids: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()
_root_ids_lock = threading.Lock()


def root_unit_id(session: Session, profile: ServiceProfile) -> int:
    """The id of a service's root unit, looked up once per engine (intake files every case there)."""
    engine = session.get_bind()
    with _root_ids_lock:
        known = _root_ids.setdefault(engine, {})  # type: ignore[arg-type]
        unit_id = known.get(profile.root_unit.code)
    if unit_id is None:
        unit_id = root_unit(session, profile).id
        with _root_ids_lock:
            known[profile.root_unit.code] = unit_id
    return unit_id
