"""The IVR's client for the backend API: short time-outs where a caller waits (status look-ups), a
longer one for spooled cases (nobody waits), bounded retries."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ivr.settings import IvrSettings

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """Unreachable, timed out, or a 5xx: the case must go to the spool."""


class BackendRejected(RuntimeError):
    """A 4xx. Most mean the request itself is wrong; 401/403 mean this node's token is (see
    ivr.spool.retry_later): the case is kept and retried, never given up."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class BackendClient:
    def __init__(
        self,
        settings: IvrSettings,
        *,
        attempts: int = 2,
        backoff_seconds: float = 0.3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings, self._transport = settings, transport
        # Made on first use: a process-per-call script filing a new case never talks to the backend,
        # and httpx is a large share of such a process's start-up (issue 13).
        self._client: httpx.AsyncClient | None = None
        self._transport_error: type[Exception] = Exception
        self.delivery_timeout = max(settings.delivery_timeout_seconds, settings.backend_timeout_seconds)
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(**self._client_options())
            self._transport_error = httpx.TransportError
        return self._client

    def _client_options(self) -> dict[str, object]:
        """Where the backend is, how long to wait, and this node's token: both clients' settings."""
        return {
            "base_url": self._settings.backend_url,
            "timeout": self._settings.backend_timeout_seconds,
            "headers": {"Authorization": f"Bearer {self._settings.ivr_token}"},
            "transport": self._transport,
        }

    async def open(self) -> None:
        """Build the HTTP client now, off the event loop. Importing httpx and loading its TLS
        certificates takes a few hundred ms of CPU; done lazily inside a long-running server it
        would freeze every call on the loop (the first delivery came right after a code was set)."""
        import asyncio  # the FastAGI server's, which has it already (the per-call script: none)

        await asyncio.to_thread(lambda: self._http)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _send_once(self, http: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await http.request(method, url, **kwargs)

    async def _pause(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        last: Exception | None = None
        http = self._http
        for attempt in range(self.attempts):
            try:
                response = await self._send_once(http, method, url, **kwargs)
            except self._transport_error as exc:  # refused, reset, timed out
                last = exc
            else:
                if response.status_code < 500:
                    return response
                last = RuntimeError(f"backend answered {response.status_code}")
            if attempt + 1 < self.attempts:
                await self._pause(self.backoff_seconds * (attempt + 1))
        raise BackendUnavailable(str(last))

    @staticmethod
    def _rejected(response: httpx.Response) -> BackendRejected:
        try:
            error = response.json()["error"]
            return BackendRejected(response.status_code, error["code"], error["message"])
        except (ValueError, KeyError, TypeError):
            return BackendRejected(response.status_code, "http_error", response.text[:200])

    async def file_cases(self, payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Spooled cases in one request; each item's own result (created, replay, conflict, invalid),
        in order. No caller waits for this, so it has the longer delivery time-out."""
        response = await self._request(
            "POST", "/api/v1/cases:batch", json={"cases": payloads}, timeout=self.delivery_timeout
        )
        if response.status_code == 200:
            return response.json()["results"]
        raise self._rejected(response)

    async def file_case(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._request("POST", "/api/v1/cases", json=payload)
        if response.status_code == 201:
            return response.json()
        raise self._rejected(response)

    async def case_status(
        self, tracking_code: str, *, caller_number: str | None = None, national_id: str | None = None
    ) -> dict[str, Any] | None:
        params = {k: v for k, v in (("caller_number", caller_number), ("national_id", national_id)) if v}
        response = await self._request("GET", f"/api/v1/cases/{tracking_code}", params=params)
        if response.status_code == 200:
            return response.json()
        if response.status_code == 404:
            return None
        raise self._rejected(response)

    async def escalate(
        self, tracking_code: str, *, caller_number: str, call_id: str, national_id: str | None = None
    ) -> dict[str, Any]:
        # The backend escalates only for the case's owner: the calling number or the national ID.
        response = await self._request(
            "POST",
            f"/api/v1/cases/{tracking_code}/escalations",
            json={"caller_number": caller_number or None, "national_id": national_id, "call_id": call_id},
        )
        if response.status_code in (200, 201):
            return response.json()
        raise self._rejected(response)

    async def rate(self, tracking_code: str, *, rating: int, caller_number: str) -> None:
        response = await self._request(
            "POST",
            f"/api/v1/cases/{tracking_code}/satisfaction",
            json={"rating": rating, "caller_number": caller_number or None},
        )
        if response.status_code not in (200, 201):
            raise self._rejected(response)

    async def save_call_log(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One call's log; the backend merges a replay by Asterisk's unique id."""
        response = await self._request("POST", "/api/v1/call-logs", json=payload)
        if response.status_code in (200, 201):
            return response.json()
        raise self._rejected(response)


class BlockingBackendClient(BackendClient):
    """The same client for the process-per-call script, which has no event loop: the same requests,
    time-outs, retries and pauses, each blocking the process (its one call) until it is done. Its
    async methods never suspend, so the script steps them without asyncio (issue 13). A `transport`
    given to it is a synchronous httpx transport."""

    @property
    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(**self._client_options())
            self._transport_error = httpx.TransportError
        return self._client

    async def open(self) -> None:
        self._http  # noqa: B018 - no loop to keep free: made in place

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()  # httpx.Client: closing blocks, briefly

    async def _send_once(self, http: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return http.request(method, url, **kwargs)

    async def _pause(self, seconds: float) -> None:
        time.sleep(seconds)
