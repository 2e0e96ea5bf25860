"""Rate limits on what a stranger can try in bulk: status look-ups and escalations (per calling number
and per client address) and staff logins (per username and per address, with back-off).

Counters live where DIDEHBAN_RATE_LIMIT_STORAGE says: `memory://` in this process (ProcessWindows), or
a shared store the `limits` library speaks (redis://...) when several workers or machines answer.
An exhausted limit answers 429 with Retry-After and the usual error body.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from backend.api.deps import AppSettings
from backend.api.errors import ApiError

log = logging.getLogger(__name__)


@lru_cache
def parse_limits(notation: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(notation))


class ProcessWindows:
    """Moving windows in this process: each key's hits in time order, expired as the key is used.

    Not `limits`' own memory store: it sweeps every key of every window every 10 ms while requests
    come, so with a day's distinct calling numbers (the per-caller limit has a day window) each
    status look-up paid for a sweep over all of them: about 10 ms of CPU a look-up in the 10 M-case
    benchmark (issue 13). Here idle keys are dropped at most once a minute."""

    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, deque[float]]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def _live(self, item: RateLimitItem, key: tuple[str, ...], now: float) -> deque[float]:
        window = float(item.get_expiry())
        name = item.key_for(*key)
        entry = self._hits.get(name)
        if entry is None:
            entry = self._hits[name] = (window, deque())
        hits = entry[1]
        while hits and hits[0] <= now - window:
            hits.popleft()
        return hits

    def wait(self, item: RateLimitItem, key: tuple[str, ...]) -> float | None:
        """Seconds until one more hit fits in the window; None if it fits now."""
        now = time.monotonic()
        with self._lock:
            hits = self._live(item, key, now)
            if len(hits) < item.amount:
                return None
            # The window has room again once all but amount - 1 of its hits have left it.
            return hits[len(hits) - item.amount] + item.get_expiry() - now

    def hit(self, item: RateLimitItem, key: tuple[str, ...]) -> None:
        now = time.monotonic()
        with self._lock:
            self._live(item, key, now).append(now)
            if now - self._swept > self.SWEEP_SECONDS:
                self._sweep(now)

    def clear(self, item: RateLimitItem, key: tuple[str, ...]) -> None:
        with self._lock:
            self._hits.pop(item.key_for(*key), None)

    def _sweep(self, now: float) -> None:
        self._swept = now
        idle = [name for name, (window, hits) in self._hits.items() if not hits or hits[-1] <= now - window]
        for name in idle:
            del self._hits[name]

    def __len__(self) -> int:
        return len(self._hits)


class Throttle:
    """Moving-window counters under named keys. A broken shared store lets requests through (and
    says so in the log): throttling must never be why the hotline stops answering."""

    def __init__(self, storage_uri: str) -> None:
        self.storage_uri = storage_uri
        self.windows = ProcessWindows() if storage_uri.startswith("memory://") else None
        self.limiter = None if self.windows else MovingWindowRateLimiter(storage_from_string(storage_uri))

    def wait_seconds(self, notation: str, *key: str) -> int | None:
        """Seconds until `key` may try again under these limits; None if it may now. Counts nothing."""
        worst: int | None = None
        try:
            for item in parse_limits(notation):
                if self.windows is not None:
                    seconds = self.windows.wait(item, key)
                    if seconds is not None:
                        worst = max(worst or 0, max(1, math.ceil(seconds)))
                elif not self.limiter.test(item, *key):
                    reset = self.limiter.get_window_stats(item, *key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    worst = max(worst or 0, wait)
        except Exception:  # the store is down: let the request through
            log.exception("rate-limit store %s unavailable", key[0] if key else "?")
            return None
        return worst

    def count(self, notation: str, *key: str) -> None:
        try:
            for item in parse_limits(notation):
                if self.windows is not None:
                    self.windows.hit(item, key)
                else:
                    self.limiter.hit(item, *key)
        except Exception:
            log.exception("rate-limit store %s unavailable", key[0] if key else "?")

    def forget(self, notation: str, *key: str) -> None:
        try:
            for item in parse_limits(notation):
                if self.windows is not None:
                    self.windows.clear(item, key)
                else:
                    self.limiter.clear(item, *key)
        except Exception:
            log.exception("rate-limit store %s unavailable", key[0] if key else "?")


async def get_throttle(request: Request, settings: AppSettings) -> Throttle:
    """One Throttle per application (so each test's app starts with fresh counters)."""
    throttle = getattr(request.app.state, "throttle", None)
    if throttle is None or throttle.storage_uri != settings.rate_limit_storage:
        throttle = Throttle(settings.rate_limit_storage)
        request.app.state.throttle = throttle
    return throttle


Throttling = Annotated[Throttle, Depends(get_throttle)]


def client_address(request: Request) -> str:
    # Behind a reverse proxy, run uvicorn with --forwarded-allow-ips so this is the real client.
    return request.client.host if request.client else "unknown"


def too_many(wait: int, what: str) -> ApiError:
    return ApiError(
        429,
        "too_many_requests",
        f"too many {what}: try again in {wait} seconds",
        headers={"Retry-After": str(wait)},
    )


def enforce(throttle: Throttle, checks: list[tuple[str, tuple[str, ...]]], what: str) -> None:
    """Count the request against every (limits, key); 429 with the longest wait if any is exhausted.
    Nothing is counted when refused, so a client that waits as told gets through."""
    waits = [w for notation, key in checks if (w := throttle.wait_seconds(notation, *key)) is not None]
    if waits:
        raise too_many(max(waits), what)
    for notation, key in checks:
        throttle.count(notation, *key)
