"""Chromium (Debian's package) driven by Playwright against the backend under uvicorn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("DIDEHBAN_CHROMIUM", "/usr/bin/chromium")
# Chromium keeps trying hosts it cannot reach without the background-networking flags.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def chromium():
    # Per test, not per session: Playwright's sync API keeps an event loop running on this thread
    # while it is open, and every async test after it would fail to start its own.
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing: scripts/bootstrap.sh test installs it")
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    # SQLite only: the browser drives the pages, and every route under them runs on SQLite and
    # PostgreSQL in tests/backend. A second browser pass would add a minute to CI and test no new code.
    return f"sqlite:///{tmp_path_factory.mktemp('browser-db') / 'test.sqlite3'}"


def shoot(page, name: str) -> None:
    """The page at desktop and phone width, under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
