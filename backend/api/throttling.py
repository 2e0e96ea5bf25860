"""Rate limits on what a stranger can try in bulk: status look-ups and escalations (per calling number
and per client address) and staff logins (per username and per address, with back-off).

Counters are kept by the `limits` library in the store named by DIDEHBAN_RATE_LIMIT_STORAGE:
in memory for one process, or a shared store (redis://...) when several workers or machines answer.
An exhausted limit answers 429 with Retry-After and the usual error body.
"""

from __future__ import annotations

import logging
import math
import time
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


class Throttle:
    """Moving-window counters under named keys. A broken shared store lets requests through (and
    says so in the log): throttling must never be why the hotline stops answering."""

    def __init__(self, storage_uri: str) -> None:
        self.storage_uri = storage_uri
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def wait_seconds(self, notation: str, *key: str) -> int | None:
        """Seconds until `key` may try again under these limits; None if it may now. Counts nothing."""
        worst: int | None = None
        try:
            for item in parse_limits(notation):
                if not self.limiter.test(item, *key):
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
                self.limiter.hit(item, *key)
        except Exception:
            log.exception("rate-limit store %s unavailable", key[0] if key else "?")

    def forget(self, notation: str, *key: str) -> None:
        try:
            for item in parse_limits(notation):
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
