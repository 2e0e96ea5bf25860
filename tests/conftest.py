"""Shared fixtures. Every test runs against a real database: a SQLite file by default, and the
same tests again on PostgreSQL when DIDEHBAN_TEST_POSTGRES_URL names a server (CI starts one)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

TEST_SECRETS = {
    "DIDEHBAN_SECRET_KEY": Fernet.generate_key().decode(),
    "DIDEHBAN_LOOKUP_KEY": "test-lookup-key",
    "DIDEHBAN_IVR_TOKEN": "test-ivr-token",
    "DIDEHBAN_SESSION_KEY": "test-session-key",
    "DIDEHBAN_AMI_SECRET": "test-ami-secret",
    # Cheap argon2 for tests (the default costs about 0.3 s a hash on a busy machine).
    "DIDEHBAN_PASSWORD_TIME_COST": "1",
    "DIDEHBAN_PASSWORD_MEMORY_KIB": "1024",
    "DIDEHBAN_PASSWORD_PARALLELISM": "1",
}


def clear_caches() -> None:
    from backend.core import config, db
    from domain.profiles import profiles_in
    from ivr import settings as ivr_settings

    config.get_settings.cache_clear()
    ivr_settings.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()
    profiles_in.cache_clear()


def _backends() -> list[str]:
    backends = ["sqlite"]
    if os.environ.get("DIDEHBAN_TEST_POSTGRES_URL"):
        backends.append("postgres")
    return backends


def _postgres_admin(statement: str, admin_url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


@pytest.fixture(scope="session", params=_backends())
def database_url(request, tmp_path_factory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
        return
    # A fresh database for this run, so runs never see each other's rows.
    admin_url = os.environ["DIDEHBAN_TEST_POSTGRES_URL"]
    name = f"didehban_test_{uuid.uuid4().hex[:10]}"
    _postgres_admin(f'CREATE DATABASE "{name}"', admin_url)
    yield admin_url.rsplit("/", 1)[0] + "/" + name
    clear_caches()
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


@pytest.fixture
def settings_env(database_url, tmp_path, monkeypatch) -> Iterator[Path]:
    """Environment for one test: the shared database, private folders, test secrets."""
    for key, value in TEST_SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DIDEHBAN_DATABASE_URL", database_url)
    monkeypatch.setenv("DIDEHBAN_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DIDEHBAN_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("DIDEHBAN_RECORDINGS_DIR", str(tmp_path / "recordings"))
    monkeypatch.setenv("DIDEHBAN_SMS_FILE", str(tmp_path / "sms.log"))
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    clear_caches()
    yield tmp_path
    clear_caches()


_migrated: set[str] = set()


@pytest.fixture
def db(settings_env, database_url) -> Iterator[Session]:
    """A migrated database with the profiles' units loaded and no other rows."""
    from backend.core.db import get_engine
    from backend.core.migrate import upgrade_and_sync
    from backend.models import Base

    if database_url not in _migrated:
        upgrade_and_sync(database_url)
        _migrated.add(database_url)
    engine = get_engine()
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    upgrade_and_sync(database_url)
    session = Session(engine, expire_on_commit=False)
    yield session
    session.close()


@pytest.fixture
def vault(settings_env):
    from backend.core.config import get_settings
    from backend.core.security import IdentityVault

    return IdentityVault.from_settings(get_settings())


@pytest.fixture
def client(db):
    from fastapi.testclient import TestClient

    from backend.api.main import create_app

    with TestClient(create_app()) as c:
        yield c


@pytest.fixture
def ivr_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TEST_SECRETS['DIDEHBAN_IVR_TOKEN']}"}


@pytest.fixture
def live_server(db) -> Iterator[str]:
    """The app under uvicorn on a free port, in a thread, on the test database; yields its base URL."""
    from tests.live_backend import BackendThread

    with BackendThread() as server:
        yield server.url
