"""The IVR node's durable spool: every case filed by phone, from the moment its caller hears the
tracking code until the backend has it, and the tracking codes this node issued, never repeated.

The caller never waits for the backend (issue 13): the node issues the code (its own prefix) and
writes the case here before reading the code; ivr.delivery sends spooled cases on in batches. One
SQLite file (WAL, synchronous=FULL) in settings.spool_dir. Delivery is exactly once in effect: the
backend is idempotent on call_id, so a case delivered just before a crash and delivered again is
still one case.

Nothing private lies on this disk in the clear (R9): payloads (national ID, phone number) are
encrypted under the node's DIDEHBAN_SPOOL_KEY, the folder is 0700 and its files 0600, and a delivered
case is deleted (only a count of deliveries is kept).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from domain.node_settings import check_spool_key
from domain.privacy import without_identities
from domain.tracking_code import new_tracking_code
from ivr.fernet_token import fernet_encrypt

if TYPE_CHECKING:
    # The writer thread and its loop are the FastAGI server's (Spool.filed); the per-call script
    # files in place (BlockingSpool) and imports neither (issue 13).
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_case (
    call_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,                   -- Fernet token of the JSON payload
    tracking_code TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | dead (delivered rows are deleted)
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE TABLE IF NOT EXISTS issued_code (
    tracking_code TEXT PRIMARY KEY,
    issued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_case_code ON pending_case (tracking_code);
CREATE TABLE IF NOT EXISTS tally (
    name TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""


def _settle(outcomes: list[tuple[asyncio.Future[str], str | None, BaseException | None]]) -> None:
    """On the loop: hand filed cases' codes (or errors) to the calls waiting for them (one wake of
    the loop a transaction, not one a case)."""
    for waiter, code, error in outcomes:
        if waiter.done():  # the call was cancelled (its caller hung up meanwhile)
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(code)


class SpoolKeyError(RuntimeError):
    """The spool cannot be read: no key, or payloads written under another key."""


def private_folder(directory: Path) -> Path:
    """A folder only this user can enter (0700), made if missing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    return directory


def private_file(path: Path) -> Path:
    """Create `path` as 0600 if missing (and make an existing one 0600) before anything writes it.
    SQLite gives its -wal and -shm files the database file's mode."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    path.chmod(0o600)
    return path


class Sealer:
    """Encrypts what a spool keeps: JSON in, Fernet token out.

    Sealing (every call) goes without `cryptography` (ivr.fernet_token, same tokens); opening (the
    deliverer, `didehban spool`) imports its Fernet on first use (issue 13)."""

    def __init__(self, key: str) -> None:
        try:
            self._key = check_spool_key(key)
        except ValueError as exc:
            raise SpoolKeyError(str(exc)) from None
        self._fernet: Any = None

    def seal(self, payload: dict[str, Any]) -> str:
        return fernet_encrypt(self._key, json.dumps(payload, ensure_ascii=False).encode())

    def open(self, token: str) -> dict[str, Any]:
        from cryptography.fernet import Fernet, InvalidToken

        if self._fernet is None:
            self._fernet = Fernet(base64.urlsafe_b64encode(self._key))
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise SpoolKeyError("a spooled payload was sealed under another DIDEHBAN_SPOOL_KEY") from exc


def open_private_db(path: Path) -> sqlite3.Connection:
    private_folder(path.parent)
    private_file(path)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")  # a spooled item survives a power cut
    return db


# Named tuples, not frozen dataclasses: this module is imported by every process-per-call script,
# which uses neither, and a frozen dataclass costs a millisecond or two of CPU to define (issue 13).
class SpooledCase(NamedTuple):
    call_id: str
    payload: dict[str, Any]
    tracking_code: str
    attempts: int


class SpoolEntry(NamedTuple):
    """What `didehban spool list` shows: no payload, so no identity."""

    call_id: str
    tracking_code: str
    state: str
    attempts: int
    created_at: str
    last_error: str | None


class Spool:
    def __init__(self, directory: Path, node_prefix: str, key: str) -> None:
        self.sealer = Sealer(key)
        self.path = directory / "spool.sqlite3"
        self.node_prefix = node_prefix
        self._lock = threading.Lock()
        self._db = open_private_db(self.path)
        self._db.executescript(SCHEMA)
        # `filed`: cases waiting for the writer thread's next transaction.
        self._queue: list[tuple[str, dict[str, Any], asyncio.Future[str]]] = []
        self._queue_lock = threading.Lock()
        self._writing = False
        self._writer: ThreadPoolExecutor | None = None  # made by the first `filed`

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        self._db.close()

    @staticmethod
    def _now() -> str:
        return dt.datetime.now(dt.UTC).isoformat()

    def issue_code(self) -> str:
        """A tracking code with this node's prefix, never issued here before."""
        if not self.node_prefix:
            raise RuntimeError("this node has no DIDEHBAN_NODE_PREFIX: it cannot issue codes")
        with self._lock:
            for _ in range(50):
                code = new_tracking_code(self.node_prefix)
                try:
                    self._db.execute("INSERT INTO issued_code VALUES (?, ?)", (code, self._now()))
                    return code
                except sqlite3.IntegrityError:
                    continue
        raise RuntimeError("could not issue an unused tracking code on this node")

    def file(self, call_id: str, payload: dict[str, Any]) -> str:
        """Issue this call's tracking code and keep the case, in one transaction; the code the call
        already has if it was filed before (a replay keeps its code)."""
        return self.file_many([(call_id, payload)])[0]

    def file_many(self, cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """file() for several calls in one transaction, so one fsync makes them all durable (the
        FastAGI server files the cases of calls that finish together this way: `filed`).

        The common case (new calls, fresh codes) is three statements for the whole batch, every
        payload sealed before the database is touched: the writer thread then gives up and takes
        back the GIL a few times a batch rather than a few times a case, which under load (the loop
        thread busy with the calls) is most of the time a case waits to be filed."""
        if not self.node_prefix:
            raise RuntimeError("this node has no DIDEHBAN_NODE_PREFIX: it cannot issue codes")
        now = self._now()
        call_ids = [call_id for call_id, _ in cases]
        codes = [new_tracking_code(self.node_prefix) for _ in cases]
        sealed = [
            (call_id, self.sealer.seal({**payload, "tracking_code": code, "call_id": call_id}), code, now)
            for (call_id, payload), code in zip(cases, codes, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                fresh = len(set(call_ids)) == len(call_ids) and len(set(codes)) == len(codes)
                if fresh:
                    marks = ",".join("?" * len(call_ids))
                    fresh = not self._db.execute(
                        f"SELECT 1 FROM pending_case WHERE call_id IN ({marks}) LIMIT 1", call_ids
                    ).fetchone()
                if fresh:
                    try:
                        self._db.execute("SAVEPOINT fresh")
                        self._db.executemany(
                            "INSERT INTO issued_code VALUES (?, ?)", [(code, now) for code in codes]
                        )
                        self._db.executemany(
                            "INSERT INTO pending_case (call_id, payload, tracking_code, created_at) "
                            "VALUES (?, ?, ?, ?)",
                            sealed,
                        )
                        self._db.execute("RELEASE fresh")
                    except sqlite3.IntegrityError:
                        # A code issued here before (or a replayed call): case by case below.
                        self._db.execute("ROLLBACK TO fresh")
                        self._db.execute("RELEASE fresh")
                        fresh = False
                if not fresh:
                    codes = [self._file_in_transaction(call_id, payload, now) for call_id, payload in cases]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return codes

    def _file_in_transaction(self, call_id: str, payload: dict[str, Any], now: str) -> str:
        row = self._db.execute(
            "SELECT tracking_code FROM pending_case WHERE call_id=?", (call_id,)
        ).fetchone()
        if row is not None:
            return row[0]
        for _ in range(50):
            code = new_tracking_code(self.node_prefix)
            try:
                self._db.execute("INSERT INTO issued_code VALUES (?, ?)", (code, now))
                break
            except sqlite3.IntegrityError:
                continue
        else:
            raise RuntimeError("could not issue an unused tracking code on this node")
        sealed = self.sealer.seal({**payload, "tracking_code": code, "call_id": call_id})
        self._db.execute(
            "INSERT INTO pending_case (call_id, payload, tracking_code, created_at) VALUES (?, ?, ?, ?)",
            (call_id, sealed, code, now),
        )
        return code

    async def filed(self, call_id: str, payload: dict[str, Any]) -> str:
        """file(), off the event loop, returning once the case is durably on disk (its commit
        fsynced), so a caller only ever hears a code the node keeps.

        The spool's own writer thread does the work, never the loop (a blocking fsync there would
        stall every call on it) and never the shared thread pool (where it would queue behind other
        blocking work). Cases filed while the writer is busy wait for its next transaction and share
        it: one fsync for all of them rather than one each, so a burst of calls finishing together
        does not queue fsync behind fsync."""
        import asyncio

        loop = asyncio.get_running_loop()
        if self._writer is None:
            from concurrent.futures import ThreadPoolExecutor

            self._writer = ThreadPoolExecutor(1, thread_name_prefix="spool-writer")
        waiter: asyncio.Future[str] = loop.create_future()
        with self._queue_lock:
            self._queue.append((call_id, payload, waiter))
            start = not self._writing
            self._writing = True
        if start:
            loop.run_in_executor(self._writer, self._write_queued, loop)
        return await waiter

    def _write_queued(self, loop: asyncio.AbstractEventLoop) -> None:
        """The writer thread: every queued case in one transaction, until none is left."""
        while True:
            with self._queue_lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._writing = False
                    return
            try:
                codes = self.file_many([(call_id, payload) for call_id, payload, _ in batch])
            except Exception:
                # One case that cannot be filed (no unused code) must not fail the others with it.
                outcomes: list[tuple[asyncio.Future[str], str | None, BaseException | None]] = []
                for call_id, payload, waiter in batch:
                    try:
                        outcomes.append((waiter, self.file(call_id, payload), None))
                    except Exception as exc:
                        outcomes.append((waiter, None, exc))
            else:
                outcomes = [(waiter, code, None) for (_, _, waiter), code in zip(batch, codes, strict=True)]
            # A closed loop (the server stopped) has nobody to tell: the cases are on disk anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, outcomes)

    def waiting(self, tracking_code: str) -> bool:
        """Whether a case with this code is still here, not yet with the backend (a status call for
        it is answered from the spool)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM pending_case WHERE tracking_code=? LIMIT 1", (tracking_code,)
            ).fetchone()
        return row is not None

    def add(self, call_id: str, payload: dict[str, Any], tracking_code: str) -> None:
        payload = {**payload, "tracking_code": tracking_code, "call_id": call_id}
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO pending_case (call_id, payload, tracking_code, created_at) "
                "VALUES (?, ?, ?, ?)",
                (call_id, self.sealer.seal(payload), tracking_code, self._now()),
            )

    def pending(self, limit: int = 100) -> list[SpooledCase]:
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, payload, tracking_code, attempts FROM pending_case WHERE state='pending' "
                "ORDER BY created_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledCase(r[0], self.sealer.open(r[1]), r[2], r[3]) for r in rows]

    def mark_delivered(self, call_id: str) -> None:
        """The backend has it: the payload leaves this disk; only the count stays."""
        self.mark_delivered_many([call_id])

    def mark_delivered_many(self, call_ids: list[str]) -> None:
        """A batch the backend has, in one transaction (one fsync, not one per case)."""
        if not call_ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                gone = 0
                for call_id in call_ids:
                    gone += self._db.execute("DELETE FROM pending_case WHERE call_id=?", (call_id,)).rowcount
                if gone:
                    self._db.execute(
                        "INSERT INTO tally VALUES ('delivered', ?) "
                        "ON CONFLICT(name) DO UPDATE SET count = count + excluded.count",
                        (gone,),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def mark_failed(self, call_id: str, error: str, *, dead: bool) -> None:
        self.mark_failed_many([call_id], error, dead=dead)

    def mark_failed_many(self, call_ids: list[str], error: str, *, dead: bool) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE pending_case SET attempts=attempts+1, last_error=?, state=? WHERE call_id=?",
                [(without_identities(error)[:500], "dead" if dead else "pending", c) for c in call_ids],
            )

    def requeue(self, call_ids: list[str] | None = None) -> int:
        """Dead cases back to pending (after the cause was fixed). None: every dead case."""
        with self._lock:
            if call_ids is None:
                cursor = self._db.execute(
                    "UPDATE pending_case SET state='pending', attempts=0 WHERE state='dead'"
                )
            else:
                cursor = self._db.executemany(
                    "UPDATE pending_case SET state='pending', attempts=0 WHERE state='dead' AND call_id=?",
                    [(c,) for c in call_ids],
                )
            return cursor.rowcount

    def entries(self) -> list[SpoolEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, tracking_code, state, attempts, created_at, last_error FROM pending_case "
                "ORDER BY created_at"
            ).fetchall()
        return [SpoolEntry(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM pending_case GROUP BY state").fetchall()
            delivered = self._db.execute("SELECT count FROM tally WHERE name='delivered'").fetchone()
        counts = {state: n for state, n in rows}
        if delivered:
            counts["delivered"] = delivered[0]
        return counts


class BlockingSpool(Spool):
    """The spool of the process-per-call script: one call, no event loop, no writer thread."""

    async def filed(self, call_id: str, payload: dict[str, Any]) -> str:
        """file() in place, returning once its commit is fsynced (as Spool.filed does): the call
        has nothing else to do meanwhile. Never suspends, so it runs without an event loop."""
        return self.file(call_id, payload)


def retry_later(status: int) -> bool:
    """A refusal that is the node's fault, not the case's: a wrong or rotated token (401), a
    forbidden node (403), a limit (429). The case waits; an administrator is alerted."""
    return status in (401, 403, 429)


async def deliver_pending(spool: Spool, client) -> tuple[int, int]:
    """Try every pending case once, in batches. Returns (delivered, not delivered)."""
    from ivr.delivery import Deliverer

    return await Deliverer(spool, client).deliver_now()
