"""The per-call script's backend client (BlockingBackendClient): the FastAGI server's requests,
retries, pauses and time-outs, each blocking, with no event loop (agi_scripts.without_loop)."""

from __future__ import annotations

import httpx
import pytest

from agi_scripts.without_loop import run_without_loop
from ivr import backend_client
from ivr.backend_client import BackendUnavailable, BlockingBackendClient
from ivr.settings import IvrSettings


@pytest.fixture
def pauses(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(backend_client.time, "sleep", slept.append)
    return slept


def client(handler) -> BlockingBackendClient:
    settings = IvrSettings(backend_url="http://backend.test", ivr_token="t0ken", backend_timeout_seconds=2.5)
    return BlockingBackendClient(settings, transport=httpx.MockTransport(handler))


def test_a_5xx_is_tried_again_after_a_pause(pauses):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"tracking_code": "2112345678", "status": "received"})

    backend = client(handler)
    status = run_without_loop(backend.case_status("2112345678", caller_number="09121234567"))
    run_without_loop(backend.close())
    assert status == {"tracking_code": "2112345678", "status": "received"}
    assert len(seen) == 2 and pauses == [0.3]
    assert seen[0].headers["Authorization"] == "Bearer t0ken"
    assert seen[0].url.params["caller_number"] == "09121234567"
    assert seen[0].extensions["timeout"]["read"] == 2.5  # the backend's time-out a caller waits for


def test_unreachable_after_every_attempt(pauses):
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(BackendUnavailable):
        run_without_loop(client(handler).case_status("2112345678"))
    assert pauses == [0.3]  # two attempts, one pause between


def test_an_unknown_code_is_none(pauses):
    not_found = {"error": {"code": "not_found", "message": "no such case"}}
    backend = client(lambda request: httpx.Response(404, json=not_found))
    assert run_without_loop(backend.case_status("2112345678")) is None
    assert pauses == []
