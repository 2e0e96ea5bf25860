"""Engine and sessions. SQLite by default (one machine), PostgreSQL by URL (beyond it)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from backend.core.config import get_settings


def make_engine(url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """`sqlite_synchronous`: the setting DIDEHBAN_SQLITE_SYNCHRONOUS (NORMAL or FULL)."""
    if url.startswith("sqlite"):
        synchronous = {"NORMAL": "NORMAL", "FULL": "FULL"}[sqlite_synchronous.upper()]
        path = url.split("///", 1)[-1]
        pool: dict[str, int] = {}
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A pool as large as the busiest moment (the thread pool's 40 workers): a connection
            # opened past the pool is closed after one request, and each opening redoes the pragmas.
            pool = {"pool_size": 20, "max_overflow": 30}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # WAL lets the web app read while the scheduler and the IVR write.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    return make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# One writer at a time per SQLite database in this process: SQLite itself allows one, and a writer
# that finds the file locked sleeps in its busy handler (1 ms, then 2, 5, 10 ... up to 100 ms a try),
# which under a burst of filings turned into seconds of waiting while the lock stood free. Threads
# queue on this lock instead and go the moment the writer before them commits. Other processes (the
# scheduler) still meet the busy timeout, as before. PostgreSQL needs no such lock.
_sqlite_writers: dict[str, threading.Lock] = {}
_sqlite_writers_lock = threading.Lock()


def writing(session: Session) -> AbstractContextManager[object]:
    """Hold around a whole write transaction (from its first statement to its commit)."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return nullcontext()
    key = str(bind.url)
    with _sqlite_writers_lock:
        lock = _sqlite_writers.get(key)
        if lock is None:
            lock = _sqlite_writers[key] = threading.Lock()
    return lock
