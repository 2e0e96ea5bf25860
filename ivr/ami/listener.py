"""`didehban ami`: the AMI listener that reports the supervisors' call logs to the backend.

panoramisk's Manager reconnects when the connection breaks, but a silent drop (a dead peer, a
firewall forgetting the session) looks like a quiet night. A watchdog pings; an unanswered ping
aborts the connection so panoramisk reconnects. After every login the CDR file (Master.csv, written
by Asterisk whether or not anyone listens) is read from where the last reading stopped, and every
call in it is reported: no call is missed across a reconnect.

This node holds no database URL and no identity key: reports go over HTTP (POST /api/v1/call-logs,
merged by unique id on the backend) through a sealed outbox on disk, retried until the backend has
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from panoramisk import Manager

from ivr.ami.book import CallLogBook, CallRecord, from_cdr, report_of
from ivr.ami.cdr import CdrReader
from ivr.ami.outbox import CallLogOutbox, deliver_call_logs
from ivr.backend_client import BackendClient
from ivr.settings import IvrSettings, get_settings

log = logging.getLogger("ivr.ami")


def relative_recording(path: str | None, settings: IvrSettings) -> str | None:
    """A recording path as Asterisk saw it, relative to the recordings folder; None if outside it."""
    if not path:
        return None
    for prefix in (settings.pbx_recording_path(), str(settings.recordings_dir), "/srv/ivr/recordings"):
        prefix = prefix.rstrip("/") + "/"
        if path.startswith(prefix):
            return path[len(prefix) :]
    return None if path.startswith("/") else path


def conventional_call_file(record: CallRecord, settings: IvrSettings) -> str | None:
    """The dial plan's MixMonitor name, for records rebuilt from the CDR."""
    if record.started_at is None:
        return None
    relative = f"calls/{record.started_at:%Y%m%d}/{record.unique_id}-call.wav"
    return relative if (Path(settings.recordings_dir) / relative).exists() else None


class AmiListener:
    def __init__(
        self,
        settings: IvrSettings | None = None,
        *,
        cdr_csv: Path | None = None,
        ping_every: float = 10.0,
        ping_timeout: float = 5.0,
        retry_every: float = 5.0,
        client: BackendClient | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.book = CallLogBook()
        self.cdr = CdrReader(
            cdr_csv or self.settings.pbx_runtime / "log" / "cdr-csv" / "Master.csv",
            self.settings.spool_dir / "cdr-position.json",
        )
        self.outbox = CallLogOutbox(self.settings.spool_dir, self.settings.spool_key)
        self.client = client or BackendClient(self.settings)
        self.ping_every, self.ping_timeout = ping_every, ping_timeout
        self.retry_every = retry_every
        self.logins = 0
        self.saved = 0  # reports the backend has taken
        self.manager: Manager | None = None
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        # Reconciliations never overlap (two logins in a row): each reads from the saved position.
        self._reconciling = asyncio.Lock()

    # --- reporting ---------------------------------------------------------------------------
    def report(self, record: CallRecord) -> dict[str, object]:
        call_file = relative_recording(record.call_file, self.settings) or conventional_call_file(
            record, self.settings
        )
        return report_of(record, relative_call_file=call_file)

    async def on_event(self, _manager, event) -> None:
        record = self.book.feed(dict(event))
        if record is None and event.get("Event") == "Cdr":
            record = from_cdr(dict(event))
        if record is not None:
            try:
                await asyncio.to_thread(self.outbox.add, self.report(record))
            except Exception:
                log.exception("could not keep the call log of %s", record.unique_id)
            self._wake.set()

    async def deliver_now(self) -> int:
        delivered, _failing = await deliver_call_logs(self.outbox, self.client)
        self.saved += delivered
        return delivered

    async def _deliver_forever(self) -> None:
        """Post what the outbox holds; after a failure, wait longer each time (up to a minute)."""
        delay = self.retry_every
        while True:
            # asyncio.timeout, not wait_for, which on 3.11 swallows a cancellation that comes with
            # the wake-up (stop() then waited for ever: ivr.delivery has the same loop).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                delivered, failing = await deliver_call_logs(self.outbox, self.client)
                self.saved += delivered
            except Exception:
                log.exception("call-log delivery failed")
                failing = True
            delay = min(60.0, delay * 2) if failing else self.retry_every

    def reconcile(self) -> int:
        """Queue every call the CDR file got since the last reading. Returns how many."""
        records, position = self.cdr.read_new()
        if records:
            self.outbox.add_many([self.report(r) for r in records])
        self.cdr.save(position)  # only once the records are safe in the outbox
        return len(records)

    # --- connection --------------------------------------------------------------------------
    def _on_login(self, _manager) -> None:
        self.logins += 1
        log.info("AMI logged in (%d); reconciling from the CDR", self.logins)
        self._tasks.append(asyncio.get_running_loop().create_task(self._reconcile_async()))

    async def _reconcile_async(self) -> None:
        try:
            async with self._reconciling:
                added = await asyncio.to_thread(self.reconcile)
            if added:
                log.info("queued %d call(s) from the CDR", added)
                self._wake.set()
        except Exception:
            log.exception("CDR reconciliation failed")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.ping_every)
            manager = self.manager
            if manager is None or manager.protocol is None or not manager.authenticated:
                continue
            try:
                async with asyncio.timeout(self.ping_timeout):
                    await manager.send_action({"Action": "Ping"})
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
        self._tasks += [asyncio.create_task(self._deliver_forever()), asyncio.create_task(self._watch())]
        await self.manager.connect()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.manager:
            self.manager.close()
        await self.client.close()
        self.outbox.close()


async def run() -> None:
    listener = AmiListener()
    await listener.start()
    try:
        await asyncio.Event().wait()
    finally:
        await listener.stop()
