"""The lease is renewed while a tick works and fences every act (issue 8, fault 14): a slow SMS
batch keeps it, and a scheduler that has lost it stops at once, so no message is sent twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

from backend.core.config import get_settings
from backend.core.db import get_sessionmaker
from backend.models import OutboundMessage
from backend.scheduler.jobs import tick
from backend.scheduler.lease import TTL, acquire

T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


class SlowSender:
    """Each send takes a while (the clock moves on), then `during` runs."""

    def __init__(self, clock: Clock, takes: dt.timedelta, during: Callable[[int], None] = lambda n: None):
        self.clock, self.takes, self.during = clock, takes, during
        self.sent: list[str] = []

    def send(self, to: str, text: str, reference: str) -> str:
        self.clock.now += self.takes
        self.sent.append(reference)
        self.during(len(self.sent))
        return f"gw:{reference}"


def queue(db, vault, n: int) -> None:
    for i in range(n):
        db.add(
            OutboundMessage(
                dedupe_key=f"lease:{i}",
                to_enc=vault.encrypt(f"0912000000{i}"),
                body=f"{i}",
                next_attempt_at=T0,
            )
        )
    db.commit()


def another_scheduler_tries(clock: Clock) -> bool:
    with get_sessionmaker()() as session:
        return acquire(session, "machine-2", clock.now)


def test_a_slow_batch_renews_the_lease_as_it_goes(db, vault, settings_env):
    queue(db, vault, 4)
    clock = Clock()
    taken_over: list[bool] = []
    # Each message takes 30 s: the batch lasts two minutes, far past one lease (45 s).
    sender = SlowSender(
        clock, dt.timedelta(seconds=30), lambda n: taken_over.append(another_scheduler_tries(clock))
    )
    report = tick(get_settings(), sender, "machine-1", T0, clock=clock)
    assert clock.now - T0 > TTL
    assert taken_over == [False, False, False, False]  # the holder renewed it before each act
    assert report.leader and not report.lease_lost and report.sms_sent == 4


def test_a_scheduler_that_lost_the_lease_stops_acting_and_nothing_is_sent_twice(db, vault, settings_env):
    queue(db, vault, 6)
    clock = Clock()
    took_it: list[bool] = []

    def stall(n: int) -> None:
        if n == 2:  # the gateway hangs past the lease; another machine's scheduler takes over
            clock.now += TTL + dt.timedelta(seconds=5)
            took_it.append(another_scheduler_tries(clock))

    first = SlowSender(clock, dt.timedelta(seconds=1), stall)
    report = tick(get_settings(), first, "machine-1", T0, clock=clock)
    assert took_it == [True]
    assert len(first.sent) == 2  # stopped at once: nothing more after the lease was lost
    assert report.lease_lost and report.sms_sent == 2

    second = SlowSender(clock, dt.timedelta(seconds=1))
    clock.now += dt.timedelta(seconds=1)
    report = tick(get_settings(), second, "machine-2", clock.now, clock=clock)
    assert report.leader and report.sms_sent == 4
    sent = Counter(first.sent + second.sent)
    assert len(sent) == 6 and set(sent.values()) == {1}
    db.expire_all()
    assert {m.status for m in db.query(OutboundMessage)} == {"sent"}
