"""A real backend (uvicorn on a free port, the test database) and the real FastAGI server; tests
play Asterisk's part over TCP with ivr.phone.AsteriskSide."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.fernet import Fernet

from tests.conftest import clear_caches
from tests.live_backend import BackendThread, free_port

# Every IVR node has its own prefix and spool key; the tests' node is no exception.
NODE_ENV = {"DIDEHBAN_NODE_PREFIX": "21", "DIDEHBAN_SPOOL_KEY": Fernet.generate_key().decode()}


@pytest.fixture(autouse=True)
def node_env(monkeypatch):
    for key, value in NODE_ENV.items():
        monkeypatch.setenv(key, value)
    clear_caches()
    yield
    clear_caches()


@pytest.fixture
def ivr_env(db, settings_env, monkeypatch):
    """Settings for the IVR side: where the backend is, where prompts and recordings go."""
    port = free_port()
    monkeypatch.setenv("DIDEHBAN_BACKEND_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("DIDEHBAN_PROMPTS_DIR", str(settings_env / "prompts"))
    monkeypatch.setenv("DIDEHBAN_BACKEND_TIMEOUT_SECONDS", "2")
    # After a failed delivery the background deliverer pauses longer than a test lasts, so a test
    # that delivers by hand (deliver_now) is never raced by it; tests of the pause set their own.
    monkeypatch.setenv("DIDEHBAN_DELIVERY_BACKOFF_SECONDS", "60")
    clear_caches()
    return port


@pytest.fixture
def backend(ivr_env):
    with BackendThread(ivr_env) as server:
        yield server


@pytest.fixture
async def fastagi(ivr_env):
    from ivr.fastagi import HotlineServer

    server = HotlineServer()
    await server.start("127.0.0.1", 0)
    yield server
    await server.stop()


@pytest.fixture
def place_call(fastagi, request):
    """place_call(["1", "1", ...], service="1482", caller=..., route=..., hangup_at_command=...,
    keys_over={"digit-4": "2"} (a key pressed while that prompt plays))

    With the `backend` fixture, the spooled case is delivered before the call returns (the
    deliverer sends it behind the call; tests then read the database)."""
    from ivr.phone import AsteriskSide, Script, environment

    counter = iter(range(1, 10_000))

    async def _call(
        items,
        *,
        service="1482",
        caller="09121234567",
        route="hotline",
        hangup_at_command=None,
        unique_id=None,
        keys_over=None,
    ):
        side = AsteriskSide(Script(items), hangup_at_command=hangup_at_command, keys_over=keys_over)
        env = environment(
            route=route,
            service=service,
            caller=caller,
            unique_id=unique_id or f"1700000000.{next(counter)}",
            port=fastagi.port,
        )
        transcript = await asyncio.wait_for(side.call("127.0.0.1", fastagi.port, env), 60)
        if "backend" in request.fixturenames:
            await fastagi.deliver_now()
        return transcript

    return _call
