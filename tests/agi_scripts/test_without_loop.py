"""The per-call script's driver (agi_scripts.without_loop): a flow that never suspends runs to its
end without an event loop; one that awaits something only a loop can finish fails at once, loudly,
with its `finally` blocks run, rather than leave the caller hanging."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agi_scripts.without_loop import NeedsEventLoop, run_without_loop


def test_a_flow_that_never_suspends_returns_its_result():
    async def step(n: int) -> int:
        return n + 1

    @contextlib.asynccontextmanager
    async def private():
        yield

    async def flow() -> int:
        total = 0
        for n in range(3):
            total += await step(n)
        async with private():
            total += await step(10)
        return total

    assert run_without_loop(flow()) == 17


def test_an_error_in_the_flow_comes_out_as_it_is():
    async def flow() -> None:
        raise KeyError("no profile")

    with pytest.raises(KeyError, match="no profile"):
        run_without_loop(flow())


@pytest.fixture
def other_loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.mark.parametrize(
    "wait",
    [
        lambda loop: asyncio.sleep(0),  # yields to the loop
        lambda loop: loop.create_future(),  # a future nobody will settle
    ],
    ids=["sleep", "future"],
)
def test_a_flow_that_needs_a_loop_fails_loudly_and_unwinds(wait, other_loop):
    unwound = []

    async def flow() -> None:
        try:
            await wait(other_loop)
        finally:
            unwound.append("finally")

    with pytest.raises(NeedsEventLoop, match="needs an event loop"):
        run_without_loop(flow())
    assert unwound == ["finally"]


def test_a_flow_that_swallows_the_error_still_fails():
    async def flow() -> str:
        try:
            await asyncio.sleep(0)
        except Exception:
            return "carried on"
        return "done"

    with pytest.raises(NeedsEventLoop):
        run_without_loop(flow())


def test_a_flow_that_waits_again_while_unwinding_still_fails():
    async def flow() -> None:
        try:
            await asyncio.sleep(0)
        finally:
            await asyncio.sleep(0)  # a cleanup that needs the loop too

    with pytest.raises(NeedsEventLoop):
        run_without_loop(flow())
