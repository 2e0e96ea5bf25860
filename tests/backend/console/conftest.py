"""Console fixtures: staff of every role, a movable clock, logging in through the login form."""

from __future__ import annotations

import re

import pytest

from tests.backend.api.test_staff import PASSWORD, START, clock  # noqa: F401
from tests.factories import add_staff

# username, role, unit
STAFF = [
    ("op", "operator", "1482-hq"),
    ("khorasan", "manager", "1482-khr"),
    ("mashhad", "manager", "1482-khr-mashhad"),
    ("neyshabur", "manager", "1482-khr-neyshabur"),
    ("omid", "manager", "1482-khr-mashhad-c01"),
    ("op111", "operator", "111-khz"),
    ("abfa", "manager", "111-khz-abfa"),
    ("super", "supervisor", None),
    ("admin", "admin", None),
]


@pytest.fixture
def staff(db):
    add_staff(db, STAFF, PASSWORD, START)


CSRF = re.compile(r'name="csrf" value="([^"]*)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def console_login(client, username: str, password: str = PASSWORD) -> str:
    """Log in through the form; returns the session's CSRF token for later forms."""
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": csrf_of(page.text), "next": ""},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    inbox = client.get("/console/")
    assert inbox.status_code == 200 and 'action="/console/logout"' in inbox.text, inbox.text
    return csrf_of(inbox.text)
