"""Messages the dial plan recorded while the FastAGI server was unreachable become cases.

The dial plan names each file <service>-<uniqueid>.wav and writes the caller's digits beside it, into
<service>-<uniqueid>.caller (Asterisk runs with umask 077 in a 0700 folder): a number never appears in
a file name (R9). Names of older installs, <service>-<uniqueid>-<caller digits>.wav, are still read.
Each message is copied into the recordings folder, filed through the backend API (idempotent on the
call's unique id) and only then removed, with its sidecar: a backend outage here too loses nothing;
the next run tries again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from ivr.backend_client import BackendClient, BackendRejected, BackendUnavailable
from ivr.settings import IvrSettings

log = logging.getLogger(__name__)

# Asterisk writes the file while the caller speaks; one untouched this long is finished.
SETTLE_SECONDS = 5.0


@dataclass(frozen=True)
class FallbackMessage:
    path: Path
    service: str
    unique_id: str
    caller: str

    @property
    def sidecar(self) -> Path:
        return self.path.with_suffix(".caller")

    @classmethod
    def parse(cls, path: Path) -> FallbackMessage | None:
        service, sep, rest = path.stem.partition("-")
        if not sep or not service.isdigit() or not rest:
            return None
        unique_id, sep2, tail = rest.rpartition("-")
        if sep2 and unique_id and (tail == "" or tail.isdigit()):
            return cls(path, service, unique_id, tail)  # an older name, with the caller's digits
        if rest.endswith("-"):
            return None
        return cls(path, service, rest, _caller_from(path.with_suffix(".caller")))


def _caller_from(sidecar: Path) -> str:
    """The digits the dial plan wrote beside the message; none if withheld or the sidecar is lost."""
    try:
        return "".join(ch for ch in sidecar.read_text(errors="replace") if ch.isdigit())[:32]
    except OSError:
        return ""


def _seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path)) as w:
            return round(w.getnframes() / w.getframerate(), 2)
    except (wave.Error, EOFError, OSError):
        return None


async def ingest_one(settings: IvrSettings, client: BackendClient, message: FallbackMessage) -> bool:
    received = dt.datetime.fromtimestamp(message.path.stat().st_mtime, dt.UTC)
    relative = f"{message.service}/{received:%Y%m%d}/{message.unique_id}-fallback.wav"
    target = settings.recordings_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(message.path, target)
    payload = {
        "service": message.service,
        "kind": "request",
        "urgent": False,
        "channel": "phone",
        "caller_number": message.caller or None,
        "call_id": f"fallback-{message.unique_id}",
        "incomplete": True,
        "description": "پیام صوتی ضبط‌شده هنگام در دسترس نبودن سامانه (بدون منو و کد ملی)",
        "recording_path": relative,
        "recording_seconds": _seconds(target),
        "received_at": received.isoformat(),
    }
    try:
        created = await client.file_case(payload)
    except BackendUnavailable as exc:
        log.warning("fallback message %s kept: backend unavailable (%s)", message.unique_id, exc)
        return False
    except BackendRejected as exc:
        log.error("fallback message %s kept: backend refused it (%s)", message.unique_id, exc)
        return False
    message.path.unlink()
    message.sidecar.unlink(missing_ok=True)
    log.info("fallback message %s filed as case %s", message.unique_id, created["tracking_code"])
    return True


def ingest_all(
    settings: IvrSettings, folder: Path, *, settle_seconds: float = SETTLE_SECONDS
) -> tuple[int, int]:
    """(filed, kept). Files still being written are left for the next run."""
    now = time.time()
    messages = []
    for path in sorted(folder.glob("*.wav")) if folder.exists() else []:
        if now - path.stat().st_mtime < settle_seconds:
            continue
        message = FallbackMessage.parse(path)
        if message is None:
            log.error("fallback spool: cannot read the name %s; left in place", path.name)
            continue
        messages.append(message)

    async def run() -> tuple[int, int]:
        client = BackendClient(settings)
        try:
            results = [await ingest_one(settings, client, m) for m in messages]
        finally:
            await client.close()
        return sum(results), len(results) - sum(results)

    return asyncio.run(run()) if messages else (0, 0)
