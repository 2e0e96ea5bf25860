"""SMS senders behind one interface: a local file (the demo's phone) and an HTTP SMS gateway of the
kind Iranian SMS panels offer (JSON over HTTPS with an API key)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Protocol

import httpx

from backend.core.config import Settings


class TransientSendError(RuntimeError):
    """Try again later: the gateway was down, slow or overloaded."""


class PermanentSendError(RuntimeError):
    """Retrying will not help: the gateway refused the message (bad number, bad key, no credit)."""


class SmsSender(Protocol):
    def send(self, to: str, text: str, reference: str) -> str:
        """Send one message; return the provider's message id. `reference` is ours, unique per
        message, for gateways that drop duplicates."""
        ...


class FileSender:
    """Appends each message as a JSON line. It stands in for the operator's gateway on a demo or
    test machine, so it holds full numbers: the file is created readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, to: str, text: str, reference: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        line = json.dumps(
            {"to": to, "text": text, "reference": reference, "at": dt.datetime.now(dt.UTC).isoformat()},
            ensure_ascii=False,
        )
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return f"file:{reference}"


class HttpGatewaySender:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float,
        line_number: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url:
            raise ValueError("DIDEHBAN_SMS_GATEWAY_URL must be set for the http SMS sender")
        self.url, self.line_number = url, line_number
        self.client = httpx.Client(
            timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}, transport=transport
        )

    def send(self, to: str, text: str, reference: str) -> str:
        try:
            response = self.client.post(
                self.url, json={"to": to, "text": text, "from": self.line_number, "reference": reference}
            )
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise TransientSendError(f"gateway unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientSendError(f"gateway answered {response.status_code}")
        if response.status_code >= 400:
            raise PermanentSendError(
                f"gateway refused the message: {response.status_code} {response.text[:200]}"
            )
        try:
            return str(response.json().get("id") or reference)
        except ValueError:
            return reference


def sender_from_settings(settings: Settings) -> SmsSender:
    if settings.sms_sender == "http":
        return HttpGatewaySender(
            settings.sms_gateway_url,
            settings.sms_gateway_api_key,
            timeout=settings.sms_gateway_timeout_seconds,
            line_number=settings.sms_line_number,
        )
    if settings.sms_sender == "file":
        return FileSender(settings.sms_file)
    raise ValueError(f"DIDEHBAN_SMS_SENDER must be file or http, not {settings.sms_sender!r}")
