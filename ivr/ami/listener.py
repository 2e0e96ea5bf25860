"""`didehban ami`: the AMI listener that writes the supervisors' call logs.

panoramisk's Manager reconnects when the connection breaks, but a silent drop (a dead peer, a
firewall forgetting the session) looks like a quiet night. A watchdog pings; an unanswered ping
aborts the connection so panoramisk reconnects. After every login the CDR file (Master.csv, written
by Asterisk whether or not anyone listens) is read, and any call the listener did not see is added:
no call is missed across a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from panoramisk import Manager

from backend.core.config import Settings, get_settings
from backend.core.db import session_scope
from backend.core.security import IdentityVault
from ivr.ami.book import CallLogBook, CallRecord, from_cdr, parse_master_csv
from ivr.ami.store import save

log = logging.getLogger("ivr.ami")


class AmiListener:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        cdr_csv: Path | None = None,
        ping_every: float = 10.0,
        ping_timeout: float = 5.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.vault = IdentityVault.from_settings(self.settings)
        self.book = CallLogBook()
        self.cdr_csv = cdr_csv or self.settings.pbx_runtime / "log" / "cdr-csv" / "Master.csv"
        self.ping_every, self.ping_timeout = ping_every, ping_timeout
        self.logins = 0
        self.saved = 0
        self.manager: Manager | None = None
        self._watchdog: asyncio.Task | None = None
        # Hangup and Cdr of one call arrive together: write them one after the other (upsert).
        self._writing = asyncio.Lock()

    # --- writing -----------------------------------------------------------------------------
    def _save(self, record: CallRecord) -> None:
        with session_scope() as session:
            save(session, self.vault, self.settings, record)
        self.saved += 1

    async def on_event(self, _manager, event) -> None:
        record = self.book.feed(dict(event))
        if record is None and event.get("Event") == "Cdr":
            record = from_cdr(dict(event))
        if record is not None:
            try:
                async with self._writing:
                    await asyncio.to_thread(self._save, record)
            except Exception:
                log.exception("could not save the call log of %s", record.unique_id)

    def reconcile(self) -> int:
        """Add every call in the CDR file that the log does not have yet. Returns how many."""
        if not self.cdr_csv.exists():
            return 0
        from sqlalchemy import select

        from backend.models import CallLog

        records = [r for r in map(from_cdr, parse_master_csv(self.cdr_csv.read_text(errors="replace"))) if r]
        added = 0
        with session_scope() as session:
            known = set(session.scalars(select(CallLog.unique_id)))
            for record in records:
                if record.unique_id not in known:
                    save(session, self.vault, self.settings, record)
                    known.add(record.unique_id)
                    added += 1
        return added

    # --- connection --------------------------------------------------------------------------
    def _on_login(self, _manager) -> None:
        self.logins += 1
        log.info("AMI logged in (%d); reconciling from the CDR", self.logins)
        asyncio.get_running_loop().create_task(self._reconcile_async())

    async def _reconcile_async(self) -> None:
        try:
            async with self._writing:
                added = await asyncio.to_thread(self.reconcile)
            if added:
                log.info("added %d call(s) from the CDR that AMI did not deliver", added)
        except Exception:
            log.exception("CDR reconciliation failed")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.ping_every)
            manager = self.manager
            if manager is None or manager.protocol is None or not manager.authenticated:
                continue
            try:
                await asyncio.wait_for(manager.send_action({"Action": "Ping"}), self.ping_timeout)
            except (TimeoutError, Exception):
                log.warning("AMI did not answer a ping: dropping the connection to reconnect")
                transport = getattr(manager.protocol, "transport", None)
                if transport is not None:
                    transport.abort()  # connection_lost -> panoramisk reconnects

    async def start(self) -> None:
        self.manager = Manager(
            host=self.settings.ami_host,
            port=self.settings.ami_port,
            username=self.settings.ami_username,
            secret=self.settings.ami_secret,
            ping_delay=3600,
            reconnect_timeout=1,
            on_login=self._on_login,
            loop=asyncio.get_running_loop(),
        )
        for pattern in ("Newchannel", "Newstate", "VarSet", "Hangup", "Cdr"):
            self.manager.register_event(pattern, self.on_event)
        await self.manager.connect()
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self.manager:
            self.manager.close()


async def run() -> None:
    listener = AmiListener()
    await listener.start()
    try:
        await asyncio.Event().wait()
    finally:
        await listener.stop()
