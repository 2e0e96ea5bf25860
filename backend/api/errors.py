"""One error shape for every failure: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers  # e.g. Retry-After on a 429

    def response(self) -> JSONResponse:
        """The answer the handler gives; a route may return it instead of raising (issue 13: a raise
        travels through every dependency's exit and the exception middleware)."""
        body = error_body(self.code, self.message)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] | None = None


class ErrorBody(BaseModel):
    """What every failure answers, whatever the route."""

    error: ErrorDetail


_MEANING = {
    400: "the request cannot be read",
    401: "no valid credentials",
    403: "not allowed for this caller",
    404: "not found, or out of the caller's reach",
    405: "method not allowed",
    409: "conflicts with the current state",
    413: "the request body is too large",
    415: "unsupported media type",
    422: "the input is not valid; nothing was stored",
    429: "too many requests; see Retry-After",
    503: "a service it depends on (the database) does not answer; try again",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route really answers, with the real error body."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "problem": err["msg"]}
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return JSONResponse(error_body("invalid_request", message, fields=problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def _conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        # A race the route did not foresee (two requests inserting the same key at once): the loser is
        # told of the conflict and may retry; nothing half-written was kept (the session rolled back).
        return JSONResponse(
            error_body("conflict", "a concurrent request changed the same record: try again"), status_code=409
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # The database went away, refused the connection or stayed locked past its time-out: nothing
        # was stored, and the caller (an IVR node's deliverer, a browser) may retry, so 503, not 500.
        return JSONResponse(
            error_body("database_unavailable", "the database does not answer; try again shortly"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # A value the database cannot hold that no schema caught (a NUL in a query string, a number out
        # of range): the input is at fault, not the server, and the session has rolled back.
        return JSONResponse(
            error_body("invalid_request", "a value cannot be stored as given"), status_code=422
        )
