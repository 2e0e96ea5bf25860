"""The staff console through its forms, as a browser without JavaScript would use it (issue 10):
the whole path of a case, CSRF, sessions, recordings with Range, attachments, the call logs,
administration, and a crawl of every page as every role that finds no identity."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections import deque
from pathlib import Path

from sqlalchemy import select

from backend.models import Attachment, CallLog, Case, OutboundMessage, User
from domain.national_id import with_check_digit
from tests.backend.api.test_cases import NID, PHONE, new_case
from tests.backend.api.test_staff import PASSWORD, START
from tests.backend.console.conftest import STAFF, console_login, csrf_of

WAV = b"RIFF" + (36 + 4000).to_bytes(4, "little") + b"WAVEfmt " + bytes(range(256)) * 16
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def file_case(client, ivr_headers, settings_env: Path, *, call_id: str = "1700000000.1", **extra) -> str:
    recordings = settings_env / "recordings" / "1482" / "20261122"
    recordings.mkdir(parents=True, exist_ok=True)
    (recordings / f"{call_id}-message.wav").write_bytes(WAV)
    body = new_case(
        call_id=call_id,
        received_at=START.isoformat(),
        recording_path=f"1482/20261122/{call_id}-message.wav",
        recording_seconds=4.0,
        **extra,
    )
    r = client.post("/api/v1/cases", json=body, headers=ivr_headers)
    assert r.status_code in (200, 201), r.text
    return r.json()["tracking_code"]


def post(client, url: str, csrf: str, **data) -> object:
    return client.post(url, data={"csrf": csrf, **data}, follow_redirects=False)


def test_a_case_goes_down_and_up_to_closure_through_the_pages(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    steps = [
        ("op", "transcript", {"transcript": "با کودکان بدرفتاری می‌شود."}),
        ("op", "screen", {"kind": "complaint", "category": "mistreatment", "urgent": "1"}),
        ("op", "refer", {"unit": "1482-khr"}),
        ("khorasan", "refer", {"unit": "1482-khr-mashhad"}),
        ("mashhad", "refer", {"unit": "1482-khr-mashhad-c01", "note": "بازرسی فوری"}),
        ("omid", "answer", {"text": "مرکز بازرسی شد و مربی خاطی برکنار شد."}),
        ("mashhad", "approve", {}),
        ("khorasan", "approve", {}),
        ("op", "approve", {"note": "پاسخ نهایی"}),
    ]
    for username, act, data in steps:
        clock.now += dt.timedelta(minutes=20)
        csrf = console_login(client, username)
        # The holder finds it in the inbox (the operator in the screening queue or the unit's list).
        assert code in client.get("/console/").text.replace("\u200c", "") or username == "op"
        page = client.get(f"/console/cases/{code}")
        assert f'action="/console/cases/{code}/{act}"' in page.text, (username, act)
        r = post(client, f"/console/cases/{code}/{act}", csrf, **data)
        assert r.status_code == 303, (username, act, r.text[-2000:])
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.status == "closed" and case.urgent and case.category == "mistreatment"
    actions = [e.action for e in case.events]
    assert actions == [
        "register",
        "transcript",
        "screen",
        "refer",
        "refer",
        "refer",
        "answer",
        "approve",
        "approve",
        "close",
    ]
    transcript = next(e for e in case.events if e.action == "transcript")
    assert transcript.actor == "op" and transcript.at == START + dt.timedelta(minutes=20)
    stages = {m.dedupe_key.split(":")[2].split("-")[0] for m in db.scalars(select(OutboundMessage))}
    assert {"registered", "referred", "answered", "closed"} <= stages


def test_only_the_holder_acts_others_read(client, staff, clock, ivr_headers, settings_env):
    code = file_case(client, ivr_headers, settings_env)
    csrf = console_login(client, "op")
    assert post(client, f"/console/cases/{code}/screen", csrf, category="other").status_code == 303
    assert post(client, f"/console/cases/{code}/refer", csrf, unit="1482-khr-mashhad").status_code == 303
    csrf = console_login(client, "khorasan")  # above the holder: sees it, may not act
    page = client.get(f"/console/cases/{code}")
    assert page.status_code == 200 and "فقط خواندنی" in page.text and "/answer" not in page.text
    r = post(client, f"/console/cases/{code}/answer", csrf, text="پاسخ")
    assert r.status_code == 403
    console_login(client, "neyshabur")  # a sibling unit: not even there
    assert client.get(f"/console/cases/{code}").status_code == 404


def test_forms_without_the_session_csrf_token_are_refused(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    console_login(client, "op")
    for token in ("", "0" * 64):
        r = post(client, f"/console/cases/{code}/screen", token, category="other")
        assert r.status_code == 403
    # Another session's token is no good either.
    other = client.__class__(client.app)
    stolen = console_login(other, "op")
    console_login(client, "op")
    assert post(client, f"/console/cases/{code}/screen", stolen, category="other").status_code == 403
    db.expire_all()
    assert db.scalar(select(Case.status).where(Case.tracking_code == code)) == "received"
    # The login form has its own (double-submit) token.
    client.cookies.clear()
    r = client.post("/console/login", data={"username": "op", "password": PASSWORD, "csrf": "x"})
    assert r.status_code == 403


def test_cookie_is_httponly_samesite_and_sessions_end(client, staff, clock, db):
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": "mashhad", "password": PASSWORD, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http in the test; https requests get Secure
    csrf = csrf_of(client.get("/console/").text)
    # Logout ends the session row: the same cookie replayed is refused at once.
    token = client.cookies.get("didehban_console")
    assert post(client, "/console/logout", csrf).status_code == 303
    client.cookies.set("didehban_console", token, path="/console")
    r = client.get("/console/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    # The same token as a bearer token on the API is refused too: one session, two doors.
    assert client.get("/api/v1/staff/inbox", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # Expiry: ten hours later the session is over.
    console_login(client, "mashhad")
    clock.now += dt.timedelta(hours=10, minutes=1)
    assert client.get("/console/", follow_redirects=False).status_code == 303
    # A revocation (R14) is honoured at once, mid-session.
    clock.now = START
    console_login(client, "mashhad")
    from backend.workflow.staff import revoke_inactive

    revoke_inactive(db, START + dt.timedelta(days=3))
    db.commit()
    r = client.get("/console/", follow_redirects=False)
    # (revoking ends the sessions, so the page says the session ended)
    assert r.status_code == 303 and "reason=session_ended" in r.headers["location"]
    # A form posted by an htmx request after the session ended tells the page to go to login.
    r = client.post(
        "/console/notices/1/read", data={"csrf": csrf}, headers={"HX-Request": "true"}, follow_redirects=False
    )
    assert r.headers.get("hx-redirect", "").startswith("/console/login")


def test_login_failures_are_throttled_in_the_form(client, staff, monkeypatch):
    monkeypatch.setenv("DIDEHBAN_LOGIN_FAILURES_PER_USER", "2/15minutes")
    from backend.core.config import get_settings

    get_settings.cache_clear()
    codes = []
    for _ in range(3):
        client.cookies.clear()
        page = client.get("/console/login")
        r = client.post(
            "/console/login", data={"username": "op", "password": "wrong", "csrf": csrf_of(page.text)}
        )
        codes.append(r.status_code)
    assert codes == [401, 401, 429]


def test_recordings_answer_range_requests_only_to_those_who_see_the_case(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    console_login(client, "op")
    page = client.get(f"/console/cases/{code}").text
    src = re.search(r'<audio[^>]+src="(/console/recordings/\d+)"', page).group(1)
    r = client.get(src, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == WAV[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(WAV)}"
    assert r.headers["content-type"].startswith("audio/")
    full = client.get(src)
    assert full.status_code == 200 and full.content == WAV
    console_login(client, "abfa")  # the other service's manager
    assert client.get(src).status_code == 404


def test_attachments_checked_by_content_and_served_only_within_reach(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    csrf = console_login(client, "op")
    url = f"/console/cases/{code}/attachments"
    fake = client.post(url, data={"csrf": csrf}, files={"files": ("photo.png", b"<script>alert(1)</script>")})
    assert fake.status_code == 409 and "پذیرفته" in fake.text
    ok = client.post(url, data={"csrf": csrf}, files={"files": ("../../evil name.png", PNG, "text/html")})
    assert ok.status_code == 200  # followed to the case page
    stored = db.scalar(select(Attachment))
    assert stored.content_type == "image/png" and stored.filename == "evil name.png"
    assert "/" in stored.path and "evil" not in stored.path
    path = settings_env / "var" / "attachments" / stored.path
    assert path.read_bytes() == PNG
    r = client.get(f"/console/attachments/{stored.id}")
    assert r.status_code == 200 and r.content == PNG and r.headers["content-type"] == "image/png"
    console_login(client, "abfa")
    assert client.get(f"/console/attachments/{stored.id}").status_code == 404
    # Bigger than the API's body limit is fine here, bigger than 10 MB is refused.
    csrf = console_login(client, "op")
    big = client.post(
        url, data={"csrf": csrf}, files={"files": ("big.pdf", b"%PDF-" + b"0" * (11 * 1024 * 1024))}
    )
    assert big.status_code == 409


def test_operator_rejects_with_a_reason_and_the_caller_is_told(
    client, staff, clock, ivr_headers, settings_env, db
):
    code = file_case(client, ivr_headers, settings_env)
    csrf = console_login(client, "op")
    r = post(client, f"/console/cases/{code}/reject", csrf, why="duplicate", reason="")
    assert r.status_code == 409
    r = post(
        client, f"/console/cases/{code}/reject", csrf, why="duplicate", reason="همان پرونده پیشین شماست."
    )
    assert r.status_code == 303
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.status == "rejected"
    sms = db.scalar(
        select(OutboundMessage).where(OutboundMessage.dedupe_key.like(f"case:{case.id}:rejected%"))
    )
    assert sms is not None and "همان پرونده پیشین" in sms.body


def test_operator_registers_a_case_from_another_channel_with_evidence(
    client, staff, clock, ivr_headers, settings_env, db
):
    first = file_case(client, ivr_headers, settings_env)
    csrf = console_login(client, "op")
    r = client.post(
        "/console/cases/new",
        data={
            "csrf": csrf,
            "service": "1482",
            "channel": "governor_trip",
            "kind": "request",
            "description": "درخواست در سفر استانی",
            "national_id": NID,
            "caller_number": PHONE,
        },
        files=[("files", ("letter.pdf", b"%PDF-1.4 test", "application/pdf"))],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-2000:]
    code = r.headers["location"].split("/")[-1].split("?")[0]
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.channel == "governor_trip" and len(case.attachments) == 1
    page = client.get(f"/console/cases/{code}").text
    # The same caller (by the keyed hash of the national ID) has an earlier case, linked.
    assert "۱ پرونده پیشین" in page and f'href="/console/cases/{first}"' in page
    assert NID not in page and PHONE not in page


def test_supervisor_finds_a_call_by_its_code_and_plays_both_recordings(
    client, staff, clock, ivr_headers, settings_env, db, vault
):
    code = file_case(client, ivr_headers, settings_env)
    calls = settings_env / "recordings" / "calls" / "20261122"
    calls.mkdir(parents=True)
    (calls / "u1-call.wav").write_bytes(WAV[::-1])
    call = CallLog(
        unique_id="u1",
        service="1482",
        caller_hash=vault.lookup_hash(PHONE),
        caller_enc=vault.encrypt(PHONE),
        started_at=START,
        duration_seconds=74,
        path="menu:1>kind:1>urgent:2>nid>record>code",
        outcome="filed",
        tracking_code=code,
        message_recording="1482/20261122/1700000000.1-message.wav",
        call_recording="calls/20261122/u1-call.wav",
    )
    db.add(call)
    db.add(CallLog(unique_id="u2", service="111", started_at=START, outcome="abandoned"))
    db.commit()
    console_login(client, "super")
    page = client.get("/console/calls", params={"code": code}).text
    assert page.count("<tr>") == 2  # the header and the one call
    assert f'href="/console/cases/{code}"' in page and "۱:۱۴" in page
    # PostgreSQL sequences outlive the rows other tests deleted, so the id is not always 1.
    r = client.get(f"/console/calls/{call.id}/call", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == WAV[::-1][:10]
    assert (
        client.get(f"/console/calls/{call.id}/message?download=1")
        .headers["content-disposition"]
        .startswith("attachment")
    )
    jalali_today = "۱۴۰۵/۰۹/۰۱"  # START in Tehran: 1 Azar 1405
    assert (
        client.get("/console/calls", params={"date_from": jalali_today, "date_to": jalali_today}).text.count(
            "<tr>"
        )
        == 3
    )
    assert client.get("/console/calls", params={"date_from": "۱۴۰۵/۰۹/۰۲"}).text.count("<tr>") == 0
    assert client.get("/console/calls", params={"outcome": "abandoned"}).text.count("<tr>") == 2
    console_login(client, "op")
    assert client.get("/console/calls").status_code == 403
    assert client.get(f"/console/calls/{call.id}/call").status_code == 403


def test_administrator_manages_accounts_and_holidays(client, staff, clock, db, tmp_path, monkeypatch):
    from backend.console import admin

    spec = tmp_path / "holidays" / "iran.yaml"
    repo_holidays = Path(admin.__file__).resolve().parents[2] / "config" / "holidays"
    shutil.copytree(repo_holidays, spec.parent)
    monkeypatch.setattr(admin, "_profiles_holidays_file", lambda: spec)
    csrf = console_login(client, "admin")
    r = post(
        client,
        "/console/admin/users",
        csrf,
        username="sabzevar",
        full_name="مدیر سبزوار",
        role="manager",
        unit="1482-khr-sabzevar",
        password="a-new-password-1",
    )
    assert r.status_code == 303
    assert (
        post(
            client,
            "/console/admin/users",
            csrf,
            username="x y",
            full_name="x",
            role="manager",
            unit="",
            password="short",
        ).status_code
        == 422
    )
    console_login(client, "sabzevar", "a-new-password-1")
    csrf = console_login(client, "admin")
    assert post(client, "/console/admin/users/sabzevar/active", csrf, active="0").status_code == 303
    client.cookies.clear()
    page = client.get("/console/login")
    r = client.post(
        "/console/login",
        data={"username": "sabzevar", "password": "a-new-password-1", "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 401
    # A revoked password: only the administrator issues a new one.
    db.execute(User.__table__.update().where(User.username == "mashhad").values(password_revoked_at=START))
    db.commit()
    csrf = console_login(client, "admin")
    assert "گذرواژه لغو شده" in client.get("/console/admin/users").text
    assert (
        post(client, "/console/admin/users/mashhad/password", csrf, password="mashhad-new-pass").status_code
        == 303
    )
    console_login(client, "mashhad", "mashhad-new-pass")
    csrf = console_login(client, "admin")
    assert (
        post(
            client, "/console/admin/users/omid/role", csrf, role="staff", unit="1482-khr-mashhad-c01"
        ).status_code
        == 303
    )
    db.expire_all()
    assert db.scalar(select(User.role).where(User.username == "omid")) == "staff"
    # Holidays: the same overrides file `didehban holidays set` writes.
    r = post(client, "/console/admin/holidays", csrf, date="۱۴۰۵/۰۹/۱۰", name="تعطیلی اعلام‌شده", action="add")
    assert r.status_code == 303
    assert "2026-12-01: تعطیلی اعلام‌شده" in (spec.parent / "overrides.yaml").read_text(encoding="utf-8")
    assert "تعطیلی اعلام‌شده" in client.get(r.headers["location"]).text
    console_login(client, "op")
    assert client.get("/console/admin/users").status_code == 403


def test_notices_are_marked_read_from_the_inbox(client, staff, clock, db):
    from backend.models import Notice

    mashhad = db.scalar(select(User).where(User.username == "mashhad"))
    db.add(
        Notice(user_id=mashhad.id, kind="warning", text="هشدار آزمایشی", dedupe_key="t:1", created_at=START)
    )
    db.commit()
    csrf = console_login(client, "mashhad")
    page = client.get("/console/").text
    assert "هشدار آزمایشی" in page and "۱ خوانده‌نشده" in page
    notice_id = db.scalar(select(Notice.id))
    r = client.post(f"/console/notices/{notice_id}/read", data={"csrf": csrf}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "خوانده شد" in r.text and "<html" not in r.text
    db.expire_all()
    assert db.scalar(select(Notice.read_at)) is not None
    console_login(client, "omid")
    assert client.post(f"/console/notices/{notice_id}/read", data={"csrf": csrf}).status_code in (403, 404)


# --- the no-identity crawl ---------------------------------------------------------------------

HREF = re.compile(r'href="(/console/[^"#]*)"')
SKIP = ("/console/static/", "/console/recordings/", "/console/attachments/", "/console/calls/")


def identity_variants() -> list[str]:
    from domain.digits import to_persian_digits

    nid2 = with_check_digit("567891234")
    values = [NID, PHONE, nid2, "09161112233", PHONE[1:], "+98" + PHONE[1:]]
    return values + [to_persian_digits(v) for v in values]


def test_no_page_shows_a_national_id_or_a_phone_number_to_any_role(
    client, staff, clock, ivr_headers, settings_env, db, vault
):
    codes = [file_case(client, ivr_headers, settings_env)]
    codes.append(
        file_case(
            client,
            ivr_headers,
            settings_env,
            call_id="1700000000.2",
            national_id=with_check_digit("567891234"),
            caller_number="09161112233",
            service="1482",
        )
    )
    csrf = console_login(client, "op")
    post(client, f"/console/cases/{codes[0]}/screen", csrf, category="other")
    post(client, f"/console/cases/{codes[0]}/refer", csrf, unit="1482-khr-mashhad-c01")
    client.post(
        "/console/cases/new",
        data={
            "csrf": csrf,
            "service": "1482",
            "channel": "in_person",
            "kind": "complaint",
            "description": "حضوری",
            "national_id": NID,
            "caller_number": PHONE,
        },
    )
    db.add(
        CallLog(
            unique_id="c1",
            service="1482",
            caller_hash=vault.lookup_hash(PHONE),
            caller_enc=vault.encrypt(PHONE),
            started_at=START,
            outcome="filed",
            tracking_code=codes[0],
        )
    )
    db.commit()
    secrets = identity_variants()
    crawled = 0
    for username, _role, _unit in STAFF:
        console_login(client, username)
        seen: set[str] = set()
        queue = deque(
            ["/console/", *(f"/console/cases/{c}" for c in codes), "/console/calls?code=" + codes[0]]
        )
        while queue and len(seen) < 80:
            url = queue.popleft()
            if url in seen:
                continue
            seen.add(url)
            r = client.get(url)
            assert r.status_code in (200, 403, 404), (username, url, r.status_code)
            text = r.text
            for secret in secrets:
                assert secret not in text, (username, url, secret)
            for link in HREF.findall(text):
                link = link.replace("&amp;", "&")
                if not link.startswith(SKIP) and link not in seen:
                    queue.append(link)
        crawled += len(seen)
    assert crawled > 40
    json.dumps(crawled)


def test_make_run_banner_names_the_console(capsys, settings_env):
    from backend.core.config import get_settings
    from backend.supervise import _banner

    _banner(get_settings(), pbx=False, available=set())
    assert "http://127.0.0.1:8000/console/" in capsys.readouterr().out


def test_an_administrator_files_for_either_service_with_that_services_lists(client, staff, clock, db):
    csrf = console_login(client, "admin")
    page = client.get("/console/cases/new").text
    only_1482, only_111 = 'value="care_centre_violation"', 'value="urban_services"'
    assert (only_1482 in page) != (only_111 in page)  # one service's lists at a time
    page = client.get("/console/cases/new?service=1482").text
    assert only_1482 in page and only_111 not in page
    page = client.get("/console/cases/new?service=111").text
    assert only_111 in page and only_1482 not in page
    assert 'name="service" value="111"' in page
    r = client.post(
        "/console/cases/new",
        data={
            "csrf": csrf,
            "service": "111",
            "channel": "web",
            "kind": "request",
            "category": "employment",
            "description": "درخواست از وبگاه",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[-2000:]
    code = r.headers["location"].split("/")[-1].split("?")[0]
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    assert case.service == "111" and case.category == "employment"


def test_a_nul_in_a_query_string_or_form_is_not_a_server_error(client, staff, clock):
    csrf = console_login(client, "super")
    for path in ("/console/calls?code=1%00", "/console/calls?outcome=%00", "/console/cases?q=%00"):
        assert client.get(path).status_code < 500, path
    client.cookies.clear()
    r = client.post("/console/login", data={"username": "super\x00", "password": PASSWORD, "csrf": csrf})
    assert r.status_code < 500
