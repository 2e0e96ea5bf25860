"""Running a call's flow to its end without an event loop (issue 13: importing asyncio cost the
process-per-call script more CPU than all the rest of its call).

The flows are coroutines written against the channel. On a blocking channel (each AGI command waits
for Asterisk's reply on stdin), with the blocking spool, backend client and recording mute, they never
suspend: every `await` returns at once, so one step runs the coroutine to its end. Anything that does
suspend (asyncio.sleep, a future, a thread hop) would wait for an event loop that is not there: that
is a bug, raised at the point where the flow waits, never a call left hanging."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class NeedsEventLoop(RuntimeError):
    """The flow suspended: it awaited something only an event loop can finish."""


def run_without_loop(flow: Coroutine[Any, Any, T]) -> T:
    """The flow's result, stepped to its end with no event loop. Raises NeedsEventLoop (from where
    the flow waited, its `finally` blocks run) if it suspends."""
    try:
        awaited = flow.send(None)
    except StopIteration as done:
        return done.value
    problem = NeedsEventLoop(
        f"the call awaited {awaited!r}, which needs an event loop (the per-call script runs without one)"
    )
    try:
        flow.throw(problem)  # unwinds the flow as an error where it waits: usually raises `problem`
    except StopIteration:
        pass  # the flow swallowed it; still a bug
    else:
        flow.close()  # it waited again while unwinding: no more steps
    raise problem
