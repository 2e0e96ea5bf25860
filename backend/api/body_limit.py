"""A ceiling on request bodies, before any route reads them (pure ASGI, so nothing is buffered first).

A declared Content-Length over the limit is answered 413 at once, without reading a byte of the body;
a body sent without one (chunked) is counted as it streams and cut off as soon as it passes the limit.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import error_body

# Only the console's pages take files; every API route keeps the small limit.
UPLOAD_PREFIX = "/console/"


class BodyTooLarge(HTTPException):
    """Raised from `receive` while a route reads a streamed body; the app's handlers answer it."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))


def too_large_message(limit: int) -> str:
    return f"the request body is larger than the {limit} bytes accepted"


def install(app: FastAPI, max_bytes: int, *, upload_bytes: int | None = None) -> None:
    """`upload_bytes`: the larger ceiling of the console's forms with files (attachments, R17)."""
    app.add_middleware(BodyLimit, max_bytes=max_bytes, upload_bytes=upload_bytes or max_bytes)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(
            error_body("body_too_large", str(exc.detail)), status_code=413, headers={"Connection": "close"}
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes or max_bytes

    def limit_for(self, scope: Scope) -> int:
        if scope.get("method") == "POST" and scope.get("path", "").startswith(UPLOAD_PREFIX):
            for name, value in scope.get("headers", []):
                if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                    return self.upload_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared == -1:
            await _answer(send, 400, "invalid_request", "the Content-Length header is not a number")
            return
        if declared is not None and declared > limit:
            await _answer(send, 413, "body_too_large", too_large_message(limit))
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            # Read outside a route (no exception handler on the way): answer here if still possible.
            if started:
                raise
            await _answer(send, 413, "body_too_large", too_large_message(limit))


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent, -1 when it is not a number."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return -1
            return length if length >= 0 else -1
    return None


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
