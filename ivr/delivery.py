"""Sending spooled cases to the backend (issue 13): the caller has already heard the code, so this
runs behind the calls, in batches (POST /api/v1/cases:batch), with at most `concurrency` requests
in flight and a growing pause while the backend is down or refuses this node.

One Deliverer runs in the FastAGI process (woken by each new case); `didehban spool deliver` runs
one round by hand for process-per-call nodes. Two deliverers on one spool (a second process) are
harmless: the backend is idempotent per call_id, and a case is deleted once delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.privacy import without_identities
from ivr.backend_client import BackendRejected, BackendUnavailable
from ivr.spool import Spool, SpooledCase, retry_later

log = logging.getLogger("ivr.spool")

DELIVERED = ("created", "replay")


class Deliverer:
    def __init__(
        self,
        spool: Spool,
        client,
        *,
        batch_size: int = 50,
        concurrency: int = 2,
        backoff_min: float = 1.0,
        backoff_max: float = 60.0,
        idle_seconds: float = 10.0,
        linger_seconds: float = 1.0,
    ) -> None:
        self.spool, self.client = spool, client
        self.batch_size, self.concurrency = batch_size, concurrency
        self.backoff_min, self.backoff_max, self.idle_seconds = backoff_min, backoff_max, idle_seconds
        # At most one round a linger_seconds: a case filed after a quiet spell goes at once, but
        # under load the cases of the calls filed meanwhile wait for the next round together, one
        # request (one JSON body, one spool transaction) for many cases rather than one each.
        self.linger_seconds = linger_seconds
        self._last_round = float("-inf")
        self.backoff = 0.0  # the pause after the last round (0 while the backend takes cases)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one round at a time: a case is never in two batches at once

    def wake(self) -> None:
        """A case was spooled: deliver it now (unless the backend is being given a pause)."""
        self._wake.set()

    async def deliver_now(self) -> tuple[int, int]:
        """Every pending case, once, now. Returns (delivered, not delivered)."""
        delivered, failed, _ = await self._round()
        return delivered, failed

    async def run_forever(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that
            # comes with the wake-up, and the server's stop would wait for this loop for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.idle_seconds):
                    await self._wake.wait()
                loop = asyncio.get_running_loop()
                if (wait := self._last_round + self.linger_seconds - loop.time()) > 0:
                    await asyncio.sleep(wait)
            self._wake.clear()
            started = asyncio.get_running_loop().time()
            try:
                delivered, failed, refused = await self._round(until_empty=False)
            except Exception:
                log.exception("spool delivery failed")
                refused = True
                delivered = failed = 0
            if delivered or failed:
                self._last_round = started  # a round that sent something (an empty one does not count)
            if delivered:
                log.info("delivered %d spooled case(s)", delivered)
            if refused:
                # Down, timed out, or refusing this node: wait longer each time, up to backoff_max.
                self.backoff = min(max(self.backoff * 2, self.backoff_min), self.backoff_max)
                await asyncio.sleep(self.backoff)
            else:
                self.backoff = 0.0

    async def _round(self, *, until_empty: bool = True) -> tuple[int, int, bool]:
        """(delivered, not delivered, the backend refused or did not answer). Not until_empty: one
        take (batch_size x concurrency cases) and, if more wait, a wake for the next round, so a
        backlog goes out a take a linger_seconds rather than all at once on the calls' loop."""
        delivered = failed = 0
        async with self._lock:
            while True:
                take = self.batch_size * self.concurrency
                items = await asyncio.to_thread(self.spool.pending, take)
                if not items:
                    return delivered, failed, False
                batches = [items[i : i + self.batch_size] for i in range(0, len(items), self.batch_size)]
                outcomes = await asyncio.gather(*(self._deliver(batch) for batch in batches))
                delivered += sum(d for d, _, _ in outcomes)
                failed += sum(f for _, f, _ in outcomes)
                if any(stop for _, _, stop in outcomes):
                    return delivered, failed, True
                if len(items) < take:
                    return delivered, failed, False
                if not until_empty:
                    self._wake.set()
                    return delivered, failed, False

    async def _deliver(self, items: list[SpooledCase]) -> tuple[int, int, bool]:
        """One batch: (delivered, not delivered, stop: the backend is down or refuses this node)."""
        ids = [item.call_id for item in items]
        try:
            results = await self.client.file_cases([item.payload for item in items])
        except BackendUnavailable as exc:
            await asyncio.to_thread(self.spool.mark_failed_many, ids, str(exc), dead=False)
            return 0, len(items), True
        except BackendRejected as exc:
            if retry_later(exc.status):
                # Loud, and kept pending: the cases are fine, this node's credentials are not.
                log.critical(
                    "ALERT: the backend refuses this IVR node (%s): spooled cases wait until "
                    "DIDEHBAN_IVR_TOKEN is fixed",
                    exc,
                )
                await asyncio.to_thread(self.spool.mark_failed_many, ids, str(exc), dead=False)
                return 0, len(items), True
            if len(items) > 1:
                # The batch as a whole was refused (too large, unreadable): each case on its own,
                # so one case the backend cannot read never holds up the others.
                outcomes = [await self._deliver([item]) for item in items]
                return (
                    sum(d for d, _, _ in outcomes),
                    sum(f for _, f, _ in outcomes),
                    any(s for _, _, s in outcomes),
                )
            await self._refused(items[0], f"{exc.status} {exc.code}: {exc.message}")
            return 0, 1, False
        if len(results) != len(items):
            why = "the batch's answer has the wrong length"
            await asyncio.to_thread(self.spool.mark_failed_many, ids, why, dead=False)
            return 0, len(items), True
        pairs = list(zip(items, results, strict=True))
        done = [item.call_id for item, result in pairs if result["result"] in DELIVERED]
        await asyncio.to_thread(self.spool.mark_delivered_many, done)
        for item, result in pairs:
            if result["result"] not in DELIVERED:
                error = result.get("error") or {}
                await self._refused(
                    item, f"{result['result']} {error.get('code', '')}: {error.get('message', '')}"
                )
        return len(done), len(items) - len(done), False

    async def _refused(self, item: SpooledCase, why: str) -> None:
        # Kept, not dropped: `didehban spool list` shows it, `didehban spool requeue` retries it.
        log.error("spooled case %s refused by the backend: %s", item.call_id, without_identities(why))
        await asyncio.to_thread(self.spool.mark_failed, item.call_id, why, dead=True)
