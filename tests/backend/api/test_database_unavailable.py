"""With the database gone, every route answers 503 (database_unavailable), never 500."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from backend.api import deps
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import new_case

CODE = new_tracking_code("21")


@pytest.fixture
def database_gone(client, database_url, tmp_path, monkeypatch):
    """The app started against the test database; from now on its sessions reach a database that
    does not answer (PostgreSQL: a closed port; SQLite: a file in a folder that does not exist)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'gone' / 'didehban.sqlite3'}"
    else:
        url = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/gone"
    engine = create_engine(url)
    monkeypatch.setattr(deps, "get_sessionmaker", lambda: sessionmaker(engine, expire_on_commit=False))
    yield client
    engine.dispose()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/cases/{CODE}"),
        ("GET", f"/api/v1/cases/{CODE}?caller_number=09121234567"),
        ("POST", "/api/v1/cases"),
    ],
)
def test_a_database_that_does_not_answer_is_a_503(database_gone, ivr_headers, method, path):
    body = new_case() if method == "POST" else None
    r = database_gone.request(method, path, headers=ivr_headers, json=body)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["Retry-After"] == "5"
