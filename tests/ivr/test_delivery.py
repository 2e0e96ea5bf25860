"""The deliverer on its own, against a stand-in backend: batches, bounded concurrency, each item's
own result, and the refusals that keep a case waiting (issue 13)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.backend_client import BackendRejected, BackendUnavailable
from ivr.delivery import Deliverer
from ivr.spool import Spool
from tests.ivr.conftest import NODE_ENV


class StandIn:
    """Answers file_cases like the batch route; counts what it is sent and how much at once."""

    def __init__(self, answer=None, fail: Exception | None = None) -> None:
        self.answer = answer or (lambda payload: "created")
        self.fail = fail
        self.batches: list[list[str]] = []
        self.in_flight = self.most_in_flight = 0

    async def file_cases(self, payloads):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            self.batches.append([p["call_id"] for p in payloads])
            if self.fail is not None:
                raise self.fail
            return [
                {"call_id": p["call_id"], "result": self.answer(p), "tracking_code": p["tracking_code"]}
                | (
                    {}
                    if self.answer(p) in ("created", "replay")
                    else {"error": {"code": "x", "message": "no"}}
                )
                for p in payloads
            ]
        finally:
            self.in_flight -= 1


@pytest.fixture
def spool(tmp_path):
    spool = Spool(tmp_path / "spool", "21", NODE_ENV["DIDEHBAN_SPOOL_KEY"])
    yield spool
    spool.close()


def fill(spool: Spool, n: int) -> list[str]:
    return [spool.file(f"c.{i}", {"service": "1482", "national_id": "0013542419"}) for i in range(n)]


def test_a_call_filed_twice_keeps_its_code(spool):
    first = spool.file("c.1", {"service": "1482"})
    assert spool.file("c.1", {"service": "1482"}) == first and first.startswith("21")
    assert spool.waiting(first) and not spool.waiting("2100000000")
    assert spool.counts() == {"pending": 1}


async def test_batches_and_at_most_concurrency_requests_at_once(spool):
    fill(spool, 23)
    backend = StandIn()
    assert await Deliverer(spool, backend, batch_size=5, concurrency=2).deliver_now() == (23, 0)
    assert max(len(b) for b in backend.batches) == 5 and backend.most_in_flight == 2
    assert sorted(c for b in backend.batches for c in b) == sorted(f"c.{i}" for i in range(23))
    assert spool.counts() == {"delivered": 23}
    assert await Deliverer(spool, backend).deliver_now() == (0, 0)


async def test_each_item_is_kept_or_refused_on_its_own(spool):
    fill(spool, 4)
    backend = StandIn(
        answer=lambda p: {"c.1": "conflict", "c.2": "invalid", "c.3": "replay"}.get(p["call_id"], "created")
    )
    assert await Deliverer(spool, backend).deliver_now() == (2, 2)
    # Refused cases stay on the node, listed and requeueable, never dropped.
    states = {e.call_id: e.state for e in spool.entries()}
    assert states == {"c.1": "dead", "c.2": "dead"}
    assert spool.counts()["delivered"] == 2


@pytest.mark.parametrize("status", [401, 403, 429])
async def test_a_refused_node_keeps_its_cases_waiting_and_alerts(spool, caplog, status):
    fill(spool, 3)
    backend = StandIn(fail=BackendRejected(status, "no", "refused"))
    with caplog.at_level(logging.CRITICAL, logger="ivr.spool"):
        assert await Deliverer(spool, backend, batch_size=2).deliver_now() == (0, 3)
    assert any("ALERT" in r.message for r in caplog.records)
    assert spool.counts() == {"pending": 3}


async def test_a_batch_refused_as_a_whole_is_sent_case_by_case(spool):
    fill(spool, 3)

    class Picky(StandIn):
        async def file_cases(self, payloads):
            if len(payloads) > 1:
                raise BackendRejected(413, "too_large", "the request body is too large")
            return await super().file_cases(payloads)

    backend = Picky()
    assert await Deliverer(spool, backend).deliver_now() == (3, 0)
    assert [len(b) for b in backend.batches] == [1, 1, 1]


async def test_a_backend_that_is_down_stops_the_round_and_keeps_the_cases(spool):
    fill(spool, 120)
    backend = StandIn(fail=BackendUnavailable("refused"))
    assert await Deliverer(spool, backend, batch_size=50, concurrency=2).deliver_now() == (0, 100)
    # One round of at most two batches, not a request per case against a backend that is down.
    assert len(backend.batches) == 2
    assert spool.counts() == {"pending": 120}


async def test_cases_spooled_together_go_in_one_batch(spool):
    """Each new case wakes the deliverer. The first after a quiet spell goes at once; the cases of
    the calls filed while that round was recent wait for the next round together, in one request
    (under load, one request a case was most of a call's CPU)."""
    backend = StandIn()
    deliverer = Deliverer(spool, backend, linger_seconds=1.0)
    task = asyncio.create_task(deliverer.run_forever())
    try:
        for i in range(5):
            await spool.filed(f"c.{i}", {"service": "1482"})
            deliverer.wake()
            await asyncio.sleep(0.02)
        for _ in range(100):
            if spool.counts() == {"delivered": 5}:
                break
            await asyncio.sleep(0.05)
        assert len(backend.batches) == 2 and backend.batches[0][0] == "c.0"
        assert [c for batch in backend.batches for c in batch] == [f"c.{i}" for i in range(5)]
    finally:
        task.cancel()


async def test_cases_filed_while_the_writer_is_busy_share_one_transaction(spool, monkeypatch):
    """Group commit: cases queued behind a transaction in progress are written by the next one
    together (one fsync for all), each call still gets its own code, and every one is on disk."""
    transactions: list[int] = []
    file_many = spool.file_many

    def counted(cases):
        transactions.append(len(cases))
        return file_many(cases)

    monkeypatch.setattr(spool, "file_many", counted)
    with spool._lock:  # a transaction in progress (the deliverer's, say): the writer waits for it
        tasks = [asyncio.create_task(spool.filed(f"c.{i}", {"service": "1482"})) for i in range(20)]
        await asyncio.sleep(0.2)
        assert not any(t.done() for t in tasks)  # no code before the case is on disk
    codes = await asyncio.gather(*tasks)
    # The writer took what was queued when it started (one or a few), then all the rest at once.
    assert sum(transactions) == 20 and len(transactions) <= 2
    assert len(set(codes)) == 20 and all(c.startswith("21") for c in codes)
    # Committed: another connection (another process after a crash) sees every case.
    import sqlite3

    other = sqlite3.connect(spool.path)
    try:
        assert other.execute("SELECT count(*) FROM pending_case").fetchone() == (20,)
    finally:
        other.close()
    assert await spool.filed("c.3", {"service": "1482"}) == codes[3]  # a replay keeps its code


async def test_a_case_that_cannot_be_filed_does_not_fail_the_others(spool, monkeypatch):
    import ivr.spool

    real = ivr.spool.new_tracking_code
    monkeypatch.setattr(ivr.spool, "new_tracking_code", lambda prefix: "2100000001")
    with spool._lock:
        first = asyncio.create_task(spool.filed("c.1", {"service": "1482"}))
        second = asyncio.create_task(spool.filed("c.2", {"service": "1482"}))
        await asyncio.sleep(0.1)
    # c.1 takes the only code the stand-in generator gives; c.2 finds no unused one.
    assert await first == "2100000001"
    with pytest.raises(RuntimeError, match="unused tracking code"):
        await second
    monkeypatch.setattr(ivr.spool, "new_tracking_code", real)
    assert (await spool.filed("c.2", {"service": "1482"})).startswith("21")


async def test_a_deliverer_woken_and_stopped_at_once_stops(spool):
    """The server's stop cancels the deliverer; a case spooled in the same moment woke it. On Python
    3.11 asyncio.wait_for returned the wake-up and swallowed the cancellation, and the stop (and a
    test run) waited for ever."""
    deliverer = Deliverer(spool, StandIn())
    task = asyncio.create_task(deliverer.run_forever())
    await asyncio.sleep(0.05)  # waiting for a wake-up
    deliverer.wake()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
