"""The in-process moving windows behind DIDEHBAN_RATE_LIMIT_STORAGE=memory:// (issue 13: limits' own
memory store swept every key every 10 ms, so each look-up paid for a day's distinct callers)."""

from __future__ import annotations

import pytest
from limits import parse

from backend.api import throttling
from backend.api.throttling import ProcessWindows, Throttle


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(throttling.time, "monotonic", lambda: now[0])
    return now


def test_a_moving_window_refuses_the_hit_past_its_limit_until_the_oldest_leaves(clock):
    windows = ProcessWindows()
    item = parse("3/minute")
    for _ in range(3):
        assert windows.wait(item, ("number", "a")) is None
        windows.hit(item, ("number", "a"))
        clock[0] += 10
    # Hits at 1000, 1010, 1020; at 1030 the window is full until the first leaves at 1060.
    assert windows.wait(item, ("number", "a")) == pytest.approx(30)
    assert windows.wait(item, ("number", "b")) is None  # another key has its own window
    clock[0] = 1060.5
    assert windows.wait(item, ("number", "a")) is None
    windows.clear(item, ("number", "a"))
    for _ in range(3):
        windows.hit(item, ("number", "a"))
    assert windows.wait(item, ("number", "a")) == pytest.approx(60)


def test_idle_keys_are_dropped_and_busy_ones_kept(clock):
    windows = ProcessWindows()
    day, minute = parse("60/day"), parse("10/minute")
    for n in range(5000):
        windows.hit(minute, ("number", str(n)))
    windows.hit(day, ("number", "kept"))
    assert len(windows) == 5001
    clock[0] += ProcessWindows.SWEEP_SECONDS + 1
    windows.hit(minute, ("number", "new"))  # the next hit after a sweep interval sweeps
    assert len(windows) == 2  # the day window's caller is still counted, the minute's are gone
    for _ in range(59):  # the hit before the sweep still counts: 60 in the day
        windows.hit(day, ("number", "kept"))
    assert windows.wait(day, ("number", "kept")) is not None


def test_throttle_answers_from_the_process_windows_in_memory_mode(clock):
    throttle = Throttle("memory://")
    assert isinstance(throttle.windows, ProcessWindows)
    for _ in range(2):
        assert throttle.wait_seconds("2/minute;5/day", "status", "x") is None
        throttle.count("2/minute;5/day", "status", "x")
    assert throttle.wait_seconds("2/minute;5/day", "status", "x") == 60
    throttle.forget("2/minute;5/day", "status", "x")
    assert throttle.wait_seconds("2/minute;5/day", "status", "x") is None
