"""Call logs on their way to the backend: kept on this node's disk until the backend has them.

A backend restart, a timeout or a rotated token no longer loses a call log until the next AMI login:
each report is sealed (the caller's number is in it) into a private SQLite file and posted in order;
a failure waits and is retried with back-off. The backend merges replays by unique id, so a report
posted twice (a crash after posting, before deleting) is still one call log.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from pathlib import Path
from typing import Any

from domain.privacy import without_identities
from ivr.backend_client import BackendClient, BackendRejected, BackendUnavailable
from ivr.spool import Sealer, open_private_db, retry_later

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS call_report (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    unique_id TEXT NOT NULL,
    payload TEXT NOT NULL,                  -- Fernet token of the JSON body
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL
);
"""


class CallLogOutbox:
    def __init__(self, directory: Path, key: str) -> None:
        self.sealer = Sealer(key)
        self.path = directory / "call-logs.sqlite3"
        self._lock = threading.Lock()
        self._db = open_private_db(self.path)
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO call_report (unique_id, payload, created_at) VALUES (?, ?, ?)",
                (payload["unique_id"], self.sealer.seal(payload), dt.datetime.now(dt.UTC).isoformat()),
            )

    def add_many(self, payloads: list[dict[str, Any]]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        rows = [(p["unique_id"], self.sealer.seal(p), now) for p in payloads]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO call_report (unique_id, payload, created_at) VALUES (?, ?, ?)", rows
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def pending(self, limit: int = 200) -> list[tuple[int, dict[str, Any]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, payload FROM call_report WHERE state='pending' ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(row_id, self.sealer.open(token)) for row_id, token in rows]

    def done(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM call_report WHERE id=?", (row_id,))

    def failed(self, row_id: int, error: str, *, dead: bool) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE call_report SET attempts=attempts+1, last_error=?, state=? WHERE id=?",
                (without_identities(error)[:500], "dead" if dead else "pending", row_id),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM call_report GROUP BY state").fetchall()
        return dict(rows)


async def deliver_call_logs(outbox: CallLogOutbox, client: BackendClient) -> tuple[int, bool]:
    """Post pending reports in order. Returns (delivered, whether the backend is still failing)."""
    delivered = 0
    for row_id, payload in await asyncio.to_thread(outbox.pending):
        try:
            await client.save_call_log(payload)
        except BackendUnavailable as exc:
            await asyncio.to_thread(outbox.failed, row_id, str(exc), dead=False)
            log.warning("call logs wait: the backend is unavailable (%s)", exc)
            return delivered, True
        except BackendRejected as exc:
            if retry_later(exc.status):
                log.critical("ALERT: the backend refuses this node's call logs (%s): they wait", exc)
                await asyncio.to_thread(outbox.failed, row_id, str(exc), dead=False)
                return delivered, True
            # A report the backend cannot take will not improve by retrying: kept aside, logged.
            log.error("call log %s refused: %s", payload["unique_id"], without_identities(str(exc)))
            await asyncio.to_thread(outbox.failed, row_id, str(exc), dead=True)
            continue
        await asyncio.to_thread(outbox.done, row_id)
        delivered += 1
    return delivered, False
