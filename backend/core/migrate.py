"""Schema migrations (alembic) and loading the service profiles' units, as one step."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    from backend.core.db import make_engine
    from backend.transcription.search_schema import repair_sqlite_search

    engine = make_engine(url)
    with engine.begin() as connection:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        repair_sqlite_search(connection)
    engine.dispose()


def upgrade_and_sync(url: str) -> None:
    """Bring the schema to head and the unit table in step with the profiles. Idempotent."""
    from sqlalchemy.orm import Session

    from backend.core.db import make_engine
    from backend.services.org import sync_units
    from backend.services.profiles import get_profiles

    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session:
        sync_units(session, get_profiles())
        session.commit()
    engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    from backend.core.db import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return revision
