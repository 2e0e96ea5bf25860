"""Migration 0005 on existing data (issue 8, faults 4 and 6): each case gets its caller's number, and
callers duplicated by concurrent first calls are merged before the national ID hash becomes unique."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import command

from backend.core.migrate import alembic_config

AT = dt.datetime(2026, 11, 20, 8, 0)


def _fresh_database(database_url: str, tmp_path) -> tuple[str, object]:
    """An empty database of the same kind as the test run's, and how to drop it."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'old.sqlite3'}", lambda: None
    import os

    from tests.conftest import _postgres_admin

    admin = os.environ["DIDEHBAN_TEST_POSTGRES_URL"]
    name = f"didehban_mig_{uuid.uuid4().hex[:10]}"
    _postgres_admin(f'CREATE DATABASE "{name}"', admin)
    return admin.rsplit("/", 1)[0] + "/" + name, lambda: _postgres_admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin
    )


def _upgrade(url: str, revision: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    engine.dispose()


def test_existing_cases_keep_their_number_and_duplicate_callers_merge(database_url, tmp_path, settings_env):
    url, drop = _fresh_database(database_url, tmp_path)
    try:
        _upgrade(url, "0003")
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            callers = [
                (1, "nid-a", "enc-nid-a", "phone-1", "enc-phone-1"),
                (2, "nid-a", "enc-nid-a", "phone-2", "enc-phone-2"),  # the race's duplicate
                (3, "nid-b", "enc-nid-b", "phone-3", "enc-phone-3"),
                (4, None, None, "phone-4", "enc-phone-4"),
            ]
            for id_, nid_hash, nid_enc, phone_hash, phone_enc in callers:
                conn.execute(
                    sa.text(
                        "INSERT INTO caller (id, national_id_hash, national_id_enc, phone_hash, phone_enc, "
                        "created_at) VALUES (:id, :nh, :ne, :ph, :pe, :at)"
                    ),
                    {"id": id_, "nh": nid_hash, "ne": nid_enc, "ph": phone_hash, "pe": phone_enc, "at": AT},
                )
            for id_, caller_id in [(10, 1), (11, 2), (12, 3), (13, 4), (14, None)]:
                conn.execute(
                    sa.text(
                        "INSERT INTO case_file (id, tracking_code, service, kind, urgent, channel, status, "
                        "incomplete, caller_id, escalation_level, created_at, updated_at) VALUES "
                        "(:id, :code, '1482', 'complaint', false, 'phone', 'received', false, :caller, 0, "
                        ":at, :at)"
                    ),
                    {"id": id_, "code": f"10000000{id_}", "caller": caller_id, "at": AT},
                )
        _upgrade(url, "head")
        with engine.connect() as conn:
            cases = conn.execute(
                sa.text("SELECT id, caller_id, phone_hash, phone_enc FROM case_file ORDER BY id")
            ).all()
            remaining = conn.execute(sa.text("SELECT id FROM caller ORDER BY id")).scalars().all()
            unique = [
                ix["unique"]
                for ix in sa.inspect(conn).get_indexes("caller")
                if ix["name"].endswith("nid_hash") or ix["column_names"] == ["national_id_hash"]
            ]
        engine.dispose()
        assert [tuple(row) for row in cases] == [
            (10, 1, "phone-1", "enc-phone-1"),
            (11, 1, "phone-2", "enc-phone-2"),  # moved to the kept caller, with its own number
            (12, 3, "phone-3", "enc-phone-3"),
            (13, 4, "phone-4", "enc-phone-4"),
            (14, None, None, None),
        ]
        assert remaining == [1, 3, 4]
        assert unique == [True]
    finally:
        drop()
