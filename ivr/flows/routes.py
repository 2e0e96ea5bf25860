"""The FastAGI routes (`agi://host/<route>`), each registered once, beside its flow:

    @route("status")
    async def case_status(call): ...

The FastAGI server serves every registered name; the AGI script and the dial plan name the same ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Flow = Callable[[Any], Awaitable[None]]

ROUTES: dict[str, Flow] = {}
DEFAULT_ROUTE = "hotline"


def route(name: str) -> Callable[[Flow], Flow]:
    def register(flow: Flow) -> Flow:
        if name in ROUTES and ROUTES[name] is not flow:
            raise ValueError(f"the FastAGI route {name!r} is registered twice")
        ROUTES[name] = flow
        return flow

    return register


def registered() -> dict[str, Flow]:
    """Every route; importing the hotline flow imports (and so registers) all the others."""
    import ivr.flows.hotline  # noqa: F401

    return dict(ROUTES)
