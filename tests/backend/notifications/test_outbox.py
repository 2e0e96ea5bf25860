"""The SMS outbox against a real local HTTP gateway and the real database."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from sqlalchemy import select, update

from backend.models import OutboundMessage
from backend.notifications.outbox import LEASE, MAX_ATTEMPTS, backoff, deliver_due
from backend.notifications.senders import (
    FileSender,
    HttpGatewaySender,
    PermanentSendError,
    TransientSendError,
)

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


class Gateway(BaseHTTPRequestHandler):
    mode = "ok"
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if Gateway.mode == "slow":
            time.sleep(1.5)
        Gateway.received.append({**body, "auth": self.headers.get("Authorization")})
        status = {"ok": 200, "bad": 400, "down": 503, "slow": 200}[Gateway.mode]
        payload = json.dumps(
            {"id": f"gw-{len(Gateway.received)}"} if status == 200 else {"error": "x"}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway():
    Gateway.mode, Gateway.received = "ok", []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/sms/send"
    server.shutdown()


def sender(url: str, timeout: float = 1.0) -> HttpGatewaySender:
    return HttpGatewaySender(url, "key-123", timeout=timeout, line_number="1482")


def test_gateway_outcomes(gateway):
    assert sender(gateway).send("09121234567", "سلام", "ref-1") == "gw-1"
    assert Gateway.received[0] == {
        "to": "09121234567",
        "text": "سلام",
        "from": "1482",
        "reference": "ref-1",
        "auth": "Bearer key-123",
    }
    Gateway.mode = "bad"
    with pytest.raises(PermanentSendError, match="400"):
        sender(gateway).send("0912", "x", "ref-2")
    Gateway.mode = "down"
    with pytest.raises(TransientSendError, match="503"):
        sender(gateway).send("0912", "x", "ref-3")
    Gateway.mode = "slow"
    started = time.monotonic()
    with pytest.raises(TransientSendError, match="unreachable"):
        sender(gateway, timeout=0.3).send("0912", "x", "ref-4")
    assert time.monotonic() - started < 1.5
    with pytest.raises(TransientSendError, match="unreachable"):
        sender("http://127.0.0.1:9/sms").send("0912", "x", "ref-5")


def queue(db, vault, n: int = 1) -> list[int]:
    ids = []
    for i in range(n):
        message = OutboundMessage(
            dedupe_key=f"test:{i}",
            to_enc=vault.encrypt(f"0912000000{i}"),
            body=f"پیام {i}",
            next_attempt_at=NOW,
        )
        db.add(message)
        db.flush()
        ids.append(message.id)
    db.commit()
    return ids


def sessions():
    from backend.core.db import get_sessionmaker

    return get_sessionmaker()


def test_sent_once_then_never_again(db, vault, gateway):
    queue(db, vault, 3)
    report = deliver_due(sessions(), sender(gateway), vault, NOW)
    assert (report.sent, report.retried, report.failed) == (3, 0, 0)
    assert deliver_due(sessions(), sender(gateway), vault, NOW + dt.timedelta(hours=1)).sent == 0
    assert sorted(r["to"] for r in Gateway.received) == ["09120000000", "09120000001", "09120000002"]
    db.expire_all()
    assert {m.status for m in db.scalars(select(OutboundMessage))} == {"sent"}


def test_gateway_down_backs_off_then_delivers(db, vault, gateway):
    [message_id] = queue(db, vault)
    Gateway.mode = "down"
    assert deliver_due(sessions(), sender(gateway), vault, NOW).retried == 1
    db.expire_all()
    message = db.get(OutboundMessage, message_id)
    assert message.status == "pending" and message.attempts == 1 and "503" in message.last_error
    assert dt.timedelta(seconds=23) < message.next_attempt_at - NOW < dt.timedelta(seconds=37)
    # Not due yet: nothing is sent before the back-off ends.
    Gateway.mode = "ok"
    assert deliver_due(sessions(), sender(gateway), vault, NOW + dt.timedelta(seconds=10)).sent == 0
    assert deliver_due(sessions(), sender(gateway), vault, NOW + dt.timedelta(minutes=1)).sent == 1
    assert len([r for r in Gateway.received if r["reference"] == f"didehban-{message_id}"]) == 2  # 503 + ok


def test_permanent_refusal_fails_at_once_and_too_many_attempts_fail(db, vault, gateway):
    _first, second = queue(db, vault, 2)
    Gateway.mode = "bad"
    db.execute(update(OutboundMessage).where(OutboundMessage.id == second).values(attempts=MAX_ATTEMPTS - 1))
    db.commit()
    report = deliver_due(sessions(), sender(gateway), vault, NOW)
    assert report.failed == 2
    Gateway.mode = "down"
    db.execute(
        update(OutboundMessage).values(status="pending", attempts=MAX_ATTEMPTS - 1, next_attempt_at=NOW)
    )
    db.commit()
    assert deliver_due(sessions(), sender(gateway), vault, NOW).failed == 2  # the eighth failure is final
    db.expire_all()
    assert {m.status for m in db.scalars(select(OutboundMessage))} == {"failed"}


def test_a_crash_after_the_claim_is_retried_when_the_lease_runs_out(db, vault, gateway):
    [message_id] = queue(db, vault)

    class Crash(RuntimeError):
        pass

    class CrashingSender:
        def send(self, to, text, reference):
            raise Crash("the worker died mid-send")

    with pytest.raises(Crash):
        deliver_due(sessions(), CrashingSender(), vault, NOW)
    db.expire_all()
    message = db.get(OutboundMessage, message_id)
    assert message.status == "sending"  # claimed, not lost
    # Another worker does not take it while the lease holds...
    assert deliver_due(sessions(), sender(gateway), vault, NOW + LEASE / 2).sent == 0
    # ...and does once it has run out.
    assert deliver_due(sessions(), sender(gateway), vault, NOW + LEASE + dt.timedelta(seconds=1)).sent == 1
    assert len(Gateway.received) == 1


def test_file_sender_is_private_and_holds_each_message(tmp_path):
    path = tmp_path / "sms.log"
    FileSender(path).send("09121234567", "کد رهگیری", "r1")
    FileSender(path).send("09121234568", "دوم", "r2")
    assert path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["reference"] for x in lines] == ["r1", "r2"] and lines[0]["text"] == "کد رهگیری"


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(1)
    waits = [backoff(n, rng=rng).total_seconds() for n in range(1, 12)]
    assert 24 <= waits[0] <= 36 and waits[3] > waits[1] and max(waits) <= 3600 * 1.2
