"""Mounts the console on the backend's application: its pages, its static files, its error pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData

from backend.api.deps import AppSettings, DbSession, Now
from backend.api.errors import ApiError
from backend.api.routes.auth import authenticate
from backend.api.throttling import Throttling, client_address
from backend.console import admin, cases, oversight
from backend.console.web import (
    HERE,
    LOGIN_CSRF_COOKIE,
    ConsoleError,
    ConsoleSession,
    LoginRequired,
    PostedForm,
    clear_session_cookie,
    field,
    login_csrf_ok,
    login_redirect,
    message_fa,
    new_login_csrf,
    redirect,
    render,
    set_session_cookie,
)
from backend.models import User
from backend.workflow.staff import end_sessions

router = APIRouter(prefix="/console", include_in_schema=False)


def _safe_next(target: str) -> str:
    # Only a page of the console: never another site (an open redirect).
    if target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console/"


def _login_page(
    request: Request, *, status: int = 200, error: str | None = None, next_: str = "", username: str = ""
):
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        login_csrf=token,
        next=next_,
        username=username,
        user=None,
        csrf="",
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/console",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        max_age=3600,
    )
    return response


REASONS_FA = {
    "session_ended": "نشست شما پایان یافته است. دوباره وارد شوید.",
    "password_revoked": message_fa("password_revoked"),
    "unauthorized": "نشست شما منقضی شده است. دوباره وارد شوید.",
}


@router.get("/login")
def login_form(request: Request, next: str = "", reason: str = "") -> Response:
    return _login_page(request, next_=_safe_next(next), error=REASONS_FA.get(reason))


@router.post("/login")
async def login(
    request: Request, db: DbSession, settings: AppSettings, now: Now, throttle: Throttling
) -> Response:
    form: FormData = await request.form(max_files=0, max_fields=10)
    username, password = field(form, "username"), form.get("password")
    next_ = _safe_next(field(form, "next"))
    if not login_csrf_ok(request, form):
        return _login_page(
            request, status=403, error="فرم ورود منقضی شده است. دوباره تلاش کنید.", next_=next_
        )
    if not isinstance(password, str) or not username or len(username) > 64 or len(password) > 256:
        return _login_page(
            request, status=422, error=message_fa("bad_credentials"), next_=next_, username=username
        )
    try:
        done = authenticate(db, settings, throttle, client_address(request), username, password, now)
    except ApiError as exc:
        response = _login_page(
            request, status=exc.status, error=message_fa(exc.code), next_=next_, username=username
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    response = redirect(next_)
    set_session_cookie(response, request, done.token, done.expires_at, now)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
def logout(staff_session: ConsoleSession, form: PostedForm, db: DbSession, now: Now) -> Response:
    user = db.get(User, staff_session.user_id)
    end_sessions(db, user, now=now, reason="logout", only=staff_session.session_id)
    db.commit()
    response = redirect("/console/login")
    clear_session_cookie(response)
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(cases.new_case_router)
    app.include_router(cases.router)
    app.include_router(oversight.router)
    app.include_router(admin.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.method != "GET":
            # A form posted after the session ended: nothing was done; log in again.
            response = redirect(f"/console/login?reason={exc.reason or 'unauthorized'}")
        else:
            response = login_redirect(request)
            if exc.reason:
                response.headers["Location"] += f"&reason={exc.reason}"
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = response.headers["Location"]
        clear_session_cookie(response)
        return response

    @app.exception_handler(ConsoleError)
    async def _console_error(request: Request, exc: ConsoleError) -> Response:
        return render(request, "error.html", status=exc.status, message=exc.message)

    @app.get("/console", include_in_schema=False)
    def _console_root() -> Response:
        return redirect("/console/")
