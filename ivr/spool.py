"""The IVR node's durable spool: cases the backend could not take yet, and the tracking codes this
node issued on its own, so a backend outage loses no case and never repeats a code.

One SQLite file (WAL, synchronous=FULL) in settings.spool_dir. Calls are short; writes are few.
Delivery is exactly once in effect: the backend is idempotent on call_id, so a case delivered just
before a crash and delivered again is still one case.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.tracking_code import new_tracking_code

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending_case (
    call_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    tracking_code TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE TABLE IF NOT EXISTS issued_code (
    tracking_code TEXT PRIMARY KEY,
    issued_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class SpooledCase:
    call_id: str
    payload: dict[str, Any]
    tracking_code: str
    attempts: int


class Spool:
    def __init__(self, directory: Path, node_prefix: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "spool.sqlite3"
        self.node_prefix = node_prefix
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a spooled case survives a power cut
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def _now() -> str:
        return dt.datetime.now(dt.UTC).isoformat()

    def issue_code(self) -> str:
        """A tracking code with this node's prefix, never issued here before."""
        with self._lock:
            for _ in range(50):
                code = new_tracking_code(self.node_prefix)
                try:
                    self._db.execute("INSERT INTO issued_code VALUES (?, ?)", (code, self._now()))
                    return code
                except sqlite3.IntegrityError:
                    continue
        raise RuntimeError("could not issue an unused tracking code on this node")

    def add(self, call_id: str, payload: dict[str, Any], tracking_code: str) -> None:
        payload = {**payload, "tracking_code": tracking_code, "call_id": call_id}
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO pending_case (call_id, payload, tracking_code, created_at) "
                "VALUES (?, ?, ?, ?)",
                (call_id, json.dumps(payload, ensure_ascii=False), tracking_code, self._now()),
            )

    def pending(self, limit: int = 100) -> list[SpooledCase]:
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, payload, tracking_code, attempts FROM pending_case WHERE state='pending' "
                "ORDER BY created_at LIMIT ?",
                (limit,),
            ).fetchall()
        return [SpooledCase(r[0], json.loads(r[1]), r[2], r[3]) for r in rows]

    def mark_delivered(self, call_id: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pending_case SET state='delivered', delivered_at=? WHERE call_id=?",
                (self._now(), call_id),
            )

    def mark_failed(self, call_id: str, error: str, *, dead: bool) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE pending_case SET attempts=attempts+1, last_error=?, state=? WHERE call_id=?",
                (error[:500], "dead" if dead else "pending", call_id),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM pending_case GROUP BY state").fetchall()
        return {state: n for state, n in rows}


async def deliver_pending(spool: Spool, client) -> tuple[int, int]:
    """Try every pending case once. Returns (delivered, still pending or dead)."""
    import asyncio

    from ivr.backend_client import BackendRejected, BackendUnavailable

    delivered = failed = 0
    for item in await asyncio.to_thread(spool.pending):
        try:
            await client.file_case(item.payload)
        except BackendUnavailable as exc:
            await asyncio.to_thread(spool.mark_failed, item.call_id, str(exc), dead=False)
            failed += 1
            break  # the backend is still down: try the rest next round
        except BackendRejected as exc:
            # Kept, not dropped: an operator reads dead letters with `didehban spool status`.
            log.error("spooled case %s refused by the backend: %s", item.call_id, exc)
            await asyncio.to_thread(spool.mark_failed, item.call_id, str(exc), dead=True)
            failed += 1
        else:
            await asyncio.to_thread(spool.mark_delivered, item.call_id)
            delivered += 1
    return delivered, failed
